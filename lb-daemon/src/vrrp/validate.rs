//! The checks of a decoded advert against our own configuration, in the
//! order keepalived makes them (RFC 3768 / RFC 5798 section 7.1).

use std::net::IpAddr;

use super::packet::{Advert, AdvertInterval, Auth, Version};
use super::params::InstanceParams;
use super::reason::DropReason;

/// Why an otherwise well-formed advert is not for us or not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    #[error("VRID {got}, ours is {ours}")]
    WrongVrid { got: u8, ours: u8 },
    #[error("{got} advert, we run {ours}")]
    WrongVersion { got: Version, ours: Version },
    #[error("invalid auth type {0}")]
    InvalidAuthType(u8),
    #[error("auth type {got}, expecting {ours}")]
    AuthTypeMismatch { got: u8, ours: u8 },
    #[error("invalid password")]
    AuthFailure,
    #[error("advert interval mismatch: ours {ours}, received {got}")]
    IntervalMismatch {
        got: AdvertInterval,
        ours: AdvertInterval,
    },
    #[error("expected {ours} address(es), received {got}")]
    AddressCountMismatch { got: usize, ours: usize },
    #[error("virtual address {0} not present in advert")]
    AddressListMismatch(IpAddr),
}

impl AdvertError {
    /// The counter label for this error.
    pub fn reason(&self) -> DropReason {
        match self {
            AdvertError::WrongVrid { .. } => DropReason::WrongVrid,
            AdvertError::WrongVersion { .. } => DropReason::WrongVersion,
            AdvertError::InvalidAuthType(_) => DropReason::InvalidAuthType,
            AdvertError::AuthTypeMismatch { .. } => DropReason::AuthTypeMismatch,
            AdvertError::AuthFailure => DropReason::AuthFailure,
            AdvertError::IntervalMismatch { .. } => DropReason::IntervalMismatch,
            AdvertError::AddressCountMismatch { .. } => DropReason::AddressCountMismatch,
            AdvertError::AddressListMismatch(_) => DropReason::AddressListMismatch,
        }
    }
}

/// Checks `advert` against `params`. v3 interval differences are not an
/// error: a v3 backup adopts the master's interval.
pub fn validate(params: &InstanceParams, advert: &Advert) -> Result<(), AdvertError> {
    if advert.vrid != params.vrid {
        return Err(AdvertError::WrongVrid {
            got: advert.vrid,
            ours: params.vrid,
        });
    }
    if advert.version != params.version {
        return Err(AdvertError::WrongVersion {
            got: advert.version,
            ours: params.version,
        });
    }
    if params.version == Version::V2 {
        check_auth(&params.auth, &advert.auth)?;
        // RFC 3768 MUST; keepalived: "to prevent concurrent VRID running".
        if advert.max_advert_int != params.advert_int {
            return Err(AdvertError::IntervalMismatch {
                got: advert.max_advert_int,
                ours: params.advert_int,
            });
        }
    }
    // keepalived 2.2.7 drops on both; the peers must agree on the VIPs.
    if advert.addrs.len() != params.addresses.len() {
        return Err(AdvertError::AddressCountMismatch {
            got: advert.addrs.len(),
            ours: params.addresses.len(),
        });
    }
    if let Some(missing) = params.addresses.iter().find(|a| !advert.addrs.contains(a)) {
        return Err(AdvertError::AddressListMismatch(*missing));
    }
    Ok(())
}

fn check_auth(ours: &Auth, got: &Auth) -> Result<(), AdvertError> {
    // Types 0, 1 and 2 (AH) are valid VRRPv2 auth types.
    if let Auth::Other { auth_type, .. } = got {
        if *auth_type > 2 {
            return Err(AdvertError::InvalidAuthType(*auth_type));
        }
    }
    if got.type_code() != ours.type_code() {
        return Err(AdvertError::AuthTypeMismatch {
            got: got.type_code(),
            ours: ours.type_code(),
        });
    }
    if let (Auth::Pass(ours), Auth::Pass(got)) = (ours, got) {
        if !constant_time_eq(ours, got) {
            return Err(AdvertError::AuthFailure);
        }
    }
    Ok(())
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guessed password was right.
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
