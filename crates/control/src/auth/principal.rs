//! Who is calling: a subject, the tenant they act for and their roles.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::http::ApiError;

/// Roles, lowest first; each includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Editor,
    TenantAdmin,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::TenantAdmin, Role::PlatformAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::TenantAdmin => "tenant-admin",
            Role::PlatformAdmin => "platform-admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Jwt,
    ApiKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub subject: String,
    /// `None` only for platform admins (they name a tenant per request).
    pub tenant: Option<String>,
    /// The highest role held (a role includes the ones below it).
    pub role: Role,
    pub via: Via,
}

impl Principal {
    /// From verified JWT claims: tenant from `tenant_claim`, else the first group under
    /// `group_prefix`; roles from `realm_access.roles` (unknown roles are ignored).
    pub fn from_claims(c: &Map<String, Value>, tenant_claim: &str, group_prefix: &str) -> Result<Principal, ApiError> {
        let roles = c.get("realm_access").and_then(|r| r.get("roles")).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).filter_map(Role::parse).collect::<Vec<_>>()).unwrap_or_default();
        let role = roles.into_iter().max().ok_or_else(|| ApiError::forbidden("no_role", "the token carries none of the roles platform-admin, tenant-admin, editor, viewer"))?;
        let tenant = c.get(tenant_claim).and_then(Value::as_str).map(str::to_string).or_else(|| {
            let groups = c.get("groups").and_then(Value::as_array)?;
            groups.iter().filter_map(Value::as_str).find_map(|g| g.strip_prefix(group_prefix).map(|t| t.split('/').next().unwrap_or_default().to_string()))
        });
        let tenant = match tenant {
            Some(t) => Some(callfunnel_data::check_id(&t).map(|_| t).map_err(|e| ApiError::forbidden("invalid_tenant_claim", format!("the token's tenant: {e}")))?),
            None if role == Role::PlatformAdmin => None,
            None => return Err(ApiError::forbidden("no_tenant", "the token names no tenant (claim or group)")),
        };
        let subject = c.get("sub").and_then(Value::as_str).unwrap_or_default().chars().take(200).collect();
        Ok(Principal { subject, tenant, role, via: Via::Jwt })
    }

    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::PlatformAdmin
    }

    /// Refuses unless the caller holds `min` or higher.
    pub fn require(&self, min: Role) -> Result<(), ApiError> {
        if self.role >= min { Ok(()) } else { Err(ApiError::forbidden("insufficient_role", format!("this needs the {} role", min.as_str()))) }
    }

    /// The tenant a request acts on: the caller's own; a platform admin names one (`X-Tenant-Id`).
    /// Naming another tenant than one's own is refused.
    pub fn tenant_for(&self, named: Option<&str>) -> Result<String, ApiError> {
        match (&self.tenant, named) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(n)) if n == own => Ok(own.clone()),
            (Some(_), Some(_)) if !self.is_platform_admin() => Err(ApiError::forbidden("tenant_mismatch", "you cannot act for another tenant")),
            (_, Some(n)) => callfunnel_data::check_id(n).map(|_| n.to_string()).map_err(|e| ApiError::bad_request("invalid_tenant_id", e.to_string())),
            (None, None) => Err(ApiError::bad_request("tenant_required", "name the tenant with the X-Tenant-Id header")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(c: Value) -> Result<Principal, ApiError> {
        Principal::from_claims(c.as_object().unwrap(), "tenant_id", "/tenants/")
    }

    #[test]
    fn tenant_and_role_come_from_the_claims() {
        let a = p(json!({"sub": "u1", "tenant_id": "acme", "realm_access": {"roles": ["offline_access", "viewer", "editor"]}})).unwrap();
        assert_eq!((a.tenant.as_deref(), a.role), (Some("acme"), Role::Editor), "the highest known role");
        let g = p(json!({"sub": "u2", "groups": ["/staff", "/tenants/globex/support"], "realm_access": {"roles": ["tenant-admin"]}})).unwrap();
        assert_eq!(g.tenant.as_deref(), Some("globex"), "from the group path");
        let admin = p(json!({"sub": "ops", "realm_access": {"roles": ["platform-admin"]}})).unwrap();
        assert!(admin.tenant.is_none() && admin.is_platform_admin());
        assert_eq!(p(json!({"sub": "u3", "realm_access": {"roles": ["viewer"]}})).unwrap_err().code, "no_tenant");
        assert_eq!(p(json!({"sub": "u4", "tenant_id": "acme", "realm_access": {"roles": ["default-roles-voice"]}})).unwrap_err().code, "no_role");
        assert_eq!(p(json!({"sub": "u5", "tenant_id": "../etc", "realm_access": {"roles": ["viewer"]}})).unwrap_err().code, "invalid_tenant_claim");
        // acting for a tenant
        assert_eq!(a.tenant_for(None).unwrap(), "acme");
        assert_eq!(a.tenant_for(Some("globex")).unwrap_err().code, "tenant_mismatch");
        assert_eq!(admin.tenant_for(Some("globex")).unwrap(), "globex");
        assert_eq!(admin.tenant_for(None).unwrap_err().code, "tenant_required");
        assert!(a.require(Role::Editor).is_ok() && a.require(Role::TenantAdmin).is_err());
    }
}
