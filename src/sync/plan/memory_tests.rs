//! The plan's memory follows the work, not the org (issue 10, point 8):
//! the bytes the pure step allocates beyond its input, counted per thread
//! by a test-only allocator (the step is synchronous, so its thread's
//! count is its own even with other tests running).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use super::*;
use crate::hr::{load_bytes, Format};
use crate::mirror::column::{Column, Values};

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

/// 20,000 HR people against 20,000 Cliq users, one in a hundred with a
/// changed work location: beyond the HR source and the mirror it is given,
/// the plan may hold the 200 changes and a few bytes of index per person,
/// not a copy of the org (hash maps of every user by email and by id).
#[test]
fn plan_memory_beyond_its_input_is_a_few_bytes_per_person() {
    const N: usize = 20_000;
    let users: Vec<MirrorUser> = (0..N).map(user).collect();
    let mut csv = String::from("email_id,work_location\n");
    for i in 0..N {
        let wl = if i % 100 == 0 {
            "Building B"
        } else {
            "Building A"
        };
        csv.push_str(&format!("user{i}@zylker.example,{wl}\n"));
    }
    let hr = load_bytes(Path::new("hr.csv"), Format::Csv, csv.as_bytes()).unwrap();
    let opts = PlanOptions::default();
    let (plan, peak) = peak_of(|| compute(&hr, &users, &[], &[], &opts, &Limits::documented()));
    assert_eq!(plan.summary.updates, N / 100);
    assert_eq!(plan.summary.matched, N);
    let per_person = peak / N;
    assert!(
        per_person <= 32,
        "the plan allocated {peak} bytes beyond its input ({per_person} per person); \
         at most 32 per person are expected"
    );
}
