//! Hot state: which node holds each call, active-call leases, rate limits, the outbound-dial queue, live call events. Redis in production, in-process embedded.
