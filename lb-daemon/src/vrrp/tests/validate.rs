use super::super::packet::{Advert, AdvertInterval, Auth, Version};
use super::super::params::InstanceParams;
use super::super::reason::DropReason;
use super::super::validate::{validate, AdvertError};
use super::v4;

fn v2_params() -> InstanceParams {
    let mut p = InstanceParams::new(
        "VI_1",
        Version::V2,
        51,
        v4(10, 98, 0, 2),
        vec![v4(10, 98, 0, 100), v4(10, 98, 0, 101)],
    );
    p.auth = Auth::pass(b"1111");
    p
}

fn v2_advert() -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        max_advert_int: AdvertInterval::from_secs(1),
        addrs: vec![v4(10, 98, 0, 101), v4(10, 98, 0, 100)],
        auth: Auth::pass(b"1111"),
    }
}

fn reason_of(params: &InstanceParams, advert: &Advert) -> Option<DropReason> {
    validate(params, advert).err().map(|e| e.reason())
}

#[test]
fn matching_advert_passes_in_any_address_order() {
    assert_eq!(validate(&v2_params(), &v2_advert()), Ok(()));
}

#[test]
fn each_mismatch_has_its_reason() {
    let p = v2_params();
    let cases: Vec<(Advert, DropReason)> = vec![
        (
            Advert {
                vrid: 52,
                ..v2_advert()
            },
            DropReason::WrongVrid,
        ),
        (
            Advert {
                version: Version::V3,
                auth: Auth::None,
                ..v2_advert()
            },
            DropReason::WrongVersion,
        ),
        (
            Advert {
                auth: Auth::Other {
                    auth_type: 3,
                    data: [0; 8],
                },
                ..v2_advert()
            },
            DropReason::InvalidAuthType,
        ),
        (
            Advert {
                auth: Auth::None,
                ..v2_advert()
            },
            DropReason::AuthTypeMismatch,
        ),
        (
            Advert {
                auth: Auth::Other {
                    auth_type: 2,
                    data: [0; 8],
                },
                ..v2_advert()
            },
            DropReason::AuthTypeMismatch,
        ),
        (
            Advert {
                auth: Auth::pass(b"1112"),
                ..v2_advert()
            },
            DropReason::AuthFailure,
        ),
        (
            Advert {
                max_advert_int: AdvertInterval::from_secs(2),
                ..v2_advert()
            },
            DropReason::IntervalMismatch,
        ),
        (
            Advert {
                addrs: vec![v4(10, 98, 0, 100)],
                ..v2_advert()
            },
            DropReason::AddressCountMismatch,
        ),
        (
            Advert {
                addrs: vec![v4(10, 98, 0, 100), v4(10, 98, 0, 102)],
                ..v2_advert()
            },
            DropReason::AddressListMismatch,
        ),
    ];
    for (advert, reason) in cases {
        assert_eq!(reason_of(&p, &advert), Some(reason), "{advert:?}");
    }
}

#[test]
fn messages_carry_the_values() {
    let p = v2_params();
    let err = validate(
        &p,
        &Advert {
            max_advert_int: AdvertInterval::from_secs(2),
            ..v2_advert()
        },
    )
    .expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        "advert interval mismatch: ours 1.00 s, received 2.00 s"
    );
    let err = validate(
        &p,
        &Advert {
            addrs: vec![v4(10, 98, 0, 100), v4(10, 98, 0, 102)],
            ..v2_advert()
        },
    )
    .expect_err("mismatch");
    assert_eq!(err, AdvertError::AddressListMismatch(v4(10, 98, 0, 101)));
    assert_eq!(
        err.to_string(),
        "virtual address 10.98.0.101 not present in advert"
    );
}

#[test]
fn v3_accepts_another_interval() {
    let mut p = v2_params();
    p.version = Version::V3;
    p.auth = Auth::None;
    let advert = Advert {
        version: Version::V3,
        max_advert_int: AdvertInterval::from_centis(10),
        auth: Auth::None,
        ..v2_advert()
    };
    assert_eq!(validate(&p, &advert), Ok(()));
}

#[test]
fn v2_without_auth_accepts_type_zero() {
    let mut p = v2_params();
    p.auth = Auth::None;
    let advert = Advert {
        auth: Auth::None,
        ..v2_advert()
    };
    assert_eq!(validate(&p, &advert), Ok(()));
    assert_eq!(
        reason_of(&p, &v2_advert()),
        Some(DropReason::AuthTypeMismatch)
    );
}
