//! The built-in issuer of the embedded default: an RS256 key kept in the data directory
//! (`auth/dev-issuer.pk8`, mode 0600), its JWKS and discovery documents served by the server,
//! `callfunnel token` minting tokens with it, and a browser sign-in for the console
//! (authorization code + PKCE, [`super::sign_in`]). Its tokens go through exactly the same
//! verification as Keycloak's.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::jwt::RsaKey;
use super::secret_file::read_or_create;

pub struct DevIssuer {
    pub issuer: String,
    key: KeyPair,
    public: RsaKey,
}

impl DevIssuer {
    /// Loads the key under `dir`, creating it on first use.
    pub fn open(dir: &Path, issuer: &str) -> anyhow::Result<DevIssuer> {
        let path: PathBuf = dir.join("dev-issuer.pk8");
        let der = read_or_create(&path, || {
            let k = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
            Ok(AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k).map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?.as_ref().to_vec())
        })?;
        let key = KeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("{} is not an RSA PKCS#8 key: {e}", path.display()))?;
        let pk = key.public_key();
        let (n, e) = (pk.modulus().big_endian_without_leading_zero().to_vec(), pk.exponent().big_endian_without_leading_zero().to_vec());
        let kid = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n).as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(DevIssuer { issuer: issuer.trim_end_matches('/').to_string(), key, public: RsaKey { kid, n, e } })
    }

    pub fn public_key(&self) -> RsaKey {
        self.public.clone()
    }

    /// Signs `claims` as an RS256 JWT.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": "RS256", "typ": "JWT", "kid": self.public.kid}), claims)
    }

    /// Signs with this key under any header (tests forge tokens with it).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).expect("RSA signing with a valid key");
        format!("{input}.{}", B64.encode(sig))
    }

    /// A Keycloak-shaped access token for `subject` in `tenant` with `roles`.
    pub fn token(&self, subject: &str, tenant: Option<&str>, roles: &[&str], audience: &str, ttl_secs: i64) -> String {
        self.token_for("callfunnel-cli", subject, tenant.map(|t| ("tenant_id", t)), roles, audience, ttl_secs)
    }

    /// As [`DevIssuer::token`], asked for by client `azp`, the tenant in the named claim.
    pub fn token_for(&self, azp: &str, subject: &str, tenant: Option<(&str, &str)>, roles: &[&str], audience: &str, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut c = json!({
            "iss": self.issuer, "sub": subject, "aud": audience, "azp": azp, "typ": "Bearer",
            "iat": now, "nbf": now, "exp": now + ttl_secs, "jti": uuid::Uuid::new_v4().to_string(),
            "preferred_username": subject, "realm_access": {"roles": roles},
        });
        if let Some((claim, t)) = tenant {
            c[claim] = json!(t);
        }
        self.sign(&c)
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.public.kid, "n": B64.encode(&self.public.n), "e": B64.encode(&self.public.e)}]})
    }

    /// The discovery document (the server answers it at `ISSUER/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i, "jwks_uri": format!("{i}/certs"), "authorization_endpoint": format!("{i}/auth"), "token_endpoint": format!("{i}/token"),
            "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["none"],
        })
    }
}
