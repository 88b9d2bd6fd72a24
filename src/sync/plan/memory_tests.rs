//! The plan's memory follows the work, not the org (issue 10, point 8):
//! the bytes the diff step keeps while the join feeds it, counted per
//! thread by a test-only allocator (the step is synchronous, so its
//! thread's count is its own even with other tests running). The whole
//! plan's peak RSS, SQLite included, is `cargo bench --bench plan`'s.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use super::diff::Differ;
use super::index::Index;
use super::*;
use crate::hr::{HrRecord, HrValue, Location};
use crate::mirror::column::{Column, Values};
use crate::mirror::pushes::MirrorUser;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counters left.
        let _ = LIVE.try_with(|l| {
            l.set(l.get() + layout.size() as isize);
            let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Peak bytes allocated on this thread by `f` beyond what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, (PEAK.with(Cell::get) - base).max(0) as usize)
}

fn user(i: usize) -> MirrorUser {
    let mut values = Values::default();
    values[Column::WorkLocation] = Some("Building A".into());
    values[Column::DepartmentId] = Some(format!("d{}", i % 8));
    values[Column::DepartmentName] = Some(format!("Dept {}", i % 8));
    MirrorUser {
        id: format!("{}", 700_000_000 + i),
        email: Some(format!("user{i}@zylker.example")),
        status: Some("active".into()),
        removed: false,
        values,
    }
}

/// The HR record of user `i`: a changed work location for one in a hundred.
fn record(i: usize) -> HrRecord {
    let mut values: [Option<HrValue>; 14] = Default::default();
    let wl = if i % 100 == 0 {
        "Building B"
    } else {
        "Building A"
    };
    values[Attr::WorkLocation.index()] = Some(HrValue {
        kind: ValueKind::Direct,
        text: wl.into(),
    });
    HrRecord {
        email: format!("user{i}@zylker.example"),
        location: Location::Line(i as u64 + 2),
        values,
    }
}

/// 20,000 users and their HR records fed to the diff as the join would
/// (made on the fly, so only what the diff keeps stays): it may hold the
/// 200 changes and a few bytes per person, not a copy of the users or the
/// records.
#[test]
fn the_diff_keeps_the_changes_and_a_few_bytes_per_person() {
    const N: usize = 20_000;
    let index = Index::default();
    let opts = PlanOptions::default();
    let mut differ = Differ::new((Path::new("hr.csv"), N), &index, &[], &[], &opts);
    let ((), peak) = peak_of(|| {
        for i in 0..N {
            differ.user(user(i), Some(record(i)), false);
        }
        differ.finish();
    });
    let plan = differ.into_plan(N, &Limits::documented());
    assert_eq!(plan.summary.updates, N / 100);
    assert_eq!(plan.summary.matched, N);
    let per_person = peak / N;
    assert!(
        per_person <= 32,
        "the diff kept {peak} bytes ({per_person} per person); at most 32 per person are expected"
    );
}
