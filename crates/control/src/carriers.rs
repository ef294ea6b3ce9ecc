//! Carrier credentials and REST clients, loaded once at start-up from the secret source.
//! Without a Twilio auth token, Twilio signatures are not checked (the embedded demo); the
//! server says so in its log at start-up. Secrets are never logged.

use std::time::Duration;

use callfunnel_ai::cloud::{Secret, SecretSource};
use callfunnel_telephony::exotel::rest::ExotelClient;
use callfunnel_telephony::twilio::rest::TwilioClient;
use callfunnel_telephony::twilio::signature::Validator;

use crate::config::Config;
use crate::telephony_config::secret_names as names;

#[derive(Default)]
pub struct CarrierAuth {
    /// Checks `X-Twilio-Signature` (primary and, during rotation, secondary token).
    pub twilio_validator: Option<Validator>,
    /// Checks HMAC-SHA256 signatures made with a webhook SharedKey.
    pub twilio_shared_key: Option<Validator>,
    pub twilio: Option<TwilioClient>,
    pub exotel: Option<ExotelClient>,
    /// `user:password` expected as Basic auth on Exotel's WebSocket upgrade.
    pub exotel_stream_auth: Option<Secret>,
}

impl CarrierAuth {
    pub async fn load(cfg: &Config, secrets: &dyn SecretSource) -> anyhow::Result<CarrierAuth> {
        let get = |name: &'static str| async move { secrets.named("", name).await.map_err(|e| anyhow::anyhow!("cannot read secret `{name}`: {e}")) };
        let primary = get(names::TWILIO_AUTH_TOKEN).await?;
        let secondary = get(names::TWILIO_AUTH_TOKEN_SECONDARY).await?;
        let twilio_validator = primary.as_ref().map(|p| Validator::new(p.expose().to_string(), secondary.as_ref().map(|s| s.expose().to_string())));
        let twilio_shared_key = get(names::TWILIO_WEBHOOK_KEY).await?.map(|k| Validator::new(k.expose().to_string(), None));
        let t = &cfg.twilio;
        let twilio = match (&primary, t.account_sid.is_empty()) {
            (Some(token), false) => Some(TwilioClient::new(&t.api_base, &t.account_sid, token.expose()).with_timeout(Duration::from_millis(t.request_timeout_ms))),
            _ => None,
        };
        let e = &cfg.exotel;
        let (key, token) = (get(names::EXOTEL_API_KEY).await?, get(names::EXOTEL_API_TOKEN).await?);
        let exotel = match (key, token, e.account_sid.is_empty()) {
            (Some(k), Some(tok), false) => Some(ExotelClient::new(&e.api_base, &e.account_sid, k.expose(), tok.expose()).with_timeout(Duration::from_millis(e.request_timeout_ms))),
            _ => None,
        };
        let exotel_stream_auth = get(names::EXOTEL_STREAM_AUTH).await?;
        if twilio_validator.is_none() {
            tracing::warn!("no Twilio auth token: X-Twilio-Signature is NOT checked (set TWILIO_AUTH_TOKEN in production)");
        }
        if exotel_stream_auth.is_none() {
            tracing::warn!("no Exotel stream credentials: the Exotel WebSocket accepts any client (set EXOTEL_STREAM_AUTH=user:password in production)");
        }
        tracing::info!(twilio_rest = twilio.is_some(), exotel_rest = exotel.is_some(), rotation = secondary.is_some(), "carrier credentials loaded");
        Ok(CarrierAuth { twilio_validator, twilio_shared_key, twilio, exotel, exotel_stream_auth })
    }
}
