//! Exotel: the Connect API (outbound calls).

pub mod rest;
