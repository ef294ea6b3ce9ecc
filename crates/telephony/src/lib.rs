//! The carriers' REST and webhook side, in the media plane beside their media streams:
//! Twilio request signatures, the Calls API (dial, hang up, redirect), and Exotel's Connect API
//! and Passthru applet. Light dependencies only: the fake carrier in `callfunnel-sim` uses it too.

pub mod exotel;
pub mod twilio;

mod http_form;
