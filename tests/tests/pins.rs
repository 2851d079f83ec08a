//! Adopting maps a previous lbd pinned: only maps of the shape this lbd's
//! program declares. Needs root (bpffs, BPF).

use aya::maps::{MapData, MapInfo};
use lb_common::maps as names;
use lb_daemon::dataplane::bpf::{LoadOptions, XdpDataplane};
use lb_tests::bpffs::Bpffs;

fn load(pins: &std::path::Path, conn_table_size: Option<u32>) -> Result<XdpDataplane, String> {
    let object = lb_daemon::bpf_object::embedded().map_err(|e| e.to_string())?;
    XdpDataplane::load_with(
        object,
        &LoadOptions {
            pin_path: Some(pins.to_path_buf()),
            conn_table_size,
        },
    )
    .map_err(|e| e.to_string())
}

/// A map pinned by another version of lbd (here: a map of another value
/// size where `VIP_FILTER` should be) is refused with an error naming it,
/// what differs and what to do; the pins are left alone.
#[test]
fn a_pinned_map_of_another_shape_is_refused_by_name() {
    let bpffs = Bpffs::new();
    let pins = bpffs.path().join("lb");
    drop(load(&pins, None).expect("first load pins its maps"));
    let filter = pins.join(names::VIP_FILTER);
    std::fs::remove_file(&filter).unwrap();
    let other = MapData::from_pin(pins.join(names::RR_CURSOR)).unwrap();
    other.pin(&filter).unwrap();

    let err = load(&pins, None)
        .err()
        .expect("a VIP_FILTER of 8-byte values refused");
    assert!(err.contains(&filter.display().to_string()), "{err}");
    assert!(err.contains("value size 8, this lbd needs 4"), "{err}");
    assert!(err.contains("--on-exit detach"), "{err}");
    assert!(
        filter.exists() && pins.join(names::CONNS).exists(),
        "pins kept"
    );
}

/// A connection table pinned with another size is adopted as it is: its
/// flows are what a restart keeps.
#[test]
fn a_pinned_connection_table_keeps_its_size() {
    let bpffs = Bpffs::new();
    let pins = bpffs.path().join("lb");
    drop(load(&pins, Some(4096)).expect("first load"));
    let size = || {
        MapInfo::from_pin(pins.join(names::CONNS))
            .unwrap()
            .max_entries()
    };
    assert_eq!(size(), 4096);
    drop(load(&pins, Some(8192)).expect("adopted"));
    assert_eq!(size(), 4096, "the pinned table, not a new one");
}

/// Pins left by an older lbd, from before connection sync (no
/// `SYNC_EVENTS`, no `SYNC_CONTROL`), are adopted: the missing maps are
/// created and pinned. Reporting a previous lbd left on is off again until
/// this lbd asks.
#[test]
fn an_older_pin_set_is_adopted_and_the_sync_maps_created() {
    let bpffs = Bpffs::new();
    let pins = bpffs.path().join("lb");
    let mut first = load(&pins, None).expect("first load pins its maps");
    first.set_reporting(true).unwrap();
    drop(first);
    let control = || {
        let data = MapData::from_pin(pins.join(names::SYNC_CONTROL)).unwrap();
        let map = aya::maps::Map::from_map_data(data).unwrap();
        let array: aya::maps::Array<_, lb_common::SyncControl> =
            aya::maps::Array::try_from(map).unwrap();
        array.get(&0, 0).unwrap()
    };
    assert_eq!(control().enabled, 1, "left on by the first lbd");
    drop(load(&pins, None).expect("adopted"));
    assert_eq!(control().enabled, 0, "off until asked");

    for n in [names::SYNC_EVENTS, names::SYNC_CONTROL] {
        std::fs::remove_file(pins.join(n)).unwrap();
    }
    let dp = load(&pins, None).expect("an older pin set adopted");
    for n in [names::SYNC_EVENTS, names::SYNC_CONTROL] {
        assert!(pins.join(n).exists(), "{n} created and pinned");
    }
    dp.sync_events().expect("a reader of the new ring");
}
