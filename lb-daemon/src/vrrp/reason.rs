//! Why an incoming advertisement was dropped, as a small closed set of
//! labels for counters and metrics.

use serde::{Deserialize, Serialize};

/// The reason an advertisement was dropped. One label per check keepalived
/// makes (and logs) before it lets an advert reach its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// IPv4 TTL or IPv6 hop limit other than 255 (the advert was routed).
    BadTtl,
    /// VRRP version is not the one configured, not 2 or 3, or v2 over IPv6.
    WrongVersion,
    /// VRRP checksum does not verify.
    BadChecksum,
    /// VRRP packet type is not 1 (advertisement).
    WrongType,
    /// Packet shorter or longer than its address count says.
    BadLength,
    /// IP header unusable (bad IHL, not IPv4, address families differ).
    Malformed,
    /// IP protocol is not 112 (e.g. IPsec AH, which we do not support).
    NotVrrp,
    /// VRID is not ours. keepalived drops these silently.
    WrongVrid,
    /// v2 auth type other than 0, 1 or 2.
    InvalidAuthType,
    /// v2 auth type differs from ours.
    AuthTypeMismatch,
    /// v2 PASS password differs from ours.
    AuthFailure,
    /// v2 advert interval differs from ours (v3 adopts the master's instead).
    IntervalMismatch,
    /// Number of addresses differs from ours.
    AddressCountMismatch,
    /// One of our virtual addresses is missing from the advert.
    AddressListMismatch,
}

impl DropReason {
    /// Every reason, for pre-registering counters at zero.
    pub const ALL: [DropReason; 14] = [
        DropReason::BadTtl,
        DropReason::WrongVersion,
        DropReason::BadChecksum,
        DropReason::WrongType,
        DropReason::BadLength,
        DropReason::Malformed,
        DropReason::NotVrrp,
        DropReason::WrongVrid,
        DropReason::InvalidAuthType,
        DropReason::AuthTypeMismatch,
        DropReason::AuthFailure,
        DropReason::IntervalMismatch,
        DropReason::AddressCountMismatch,
        DropReason::AddressListMismatch,
    ];

    /// Stable snake_case label (matches the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BadTtl => "bad_ttl",
            DropReason::WrongVersion => "wrong_version",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::WrongType => "wrong_type",
            DropReason::BadLength => "bad_length",
            DropReason::Malformed => "malformed",
            DropReason::NotVrrp => "not_vrrp",
            DropReason::WrongVrid => "wrong_vrid",
            DropReason::InvalidAuthType => "invalid_auth_type",
            DropReason::AuthTypeMismatch => "auth_type_mismatch",
            DropReason::AuthFailure => "auth_failure",
            DropReason::IntervalMismatch => "interval_mismatch",
            DropReason::AddressCountMismatch => "address_count_mismatch",
            DropReason::AddressListMismatch => "address_list_mismatch",
        }
    }

    /// keepalived logs every drop reason except a foreign VRID, which is
    /// normal on a shared segment.
    pub fn is_silent(self) -> bool {
        self == DropReason::WrongVrid
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
