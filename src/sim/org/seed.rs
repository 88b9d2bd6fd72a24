//! The deterministic seed: a plausible organisation of `n` users from a `u64`, from fixed vocabularies.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration as CDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Named, Org, Status, Team, User, EMAIL_DOMAIN};

const FIRST_NAMES: [&str; 48] = [
    "Scott", "Tim", "Priya", "Aarav", "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia",
    "Mason", "Isabella", "Lucas", "Mia", "Arjun", "Amelia", "Kenji", "Yuki", "Hannah", "Lena",
    "Jonas", "Chloe", "Rahul", "Ananya", "Diego", "Lucia", "Mateo", "Fatima", "Omar", "Grace",
    "Henry", "Zoe", "Leo", "Nora", "Ravi", "Meera", "Daniel", "Sara", "Felix", "Ines", "Hugo",
    "Maya", "Samuel", "Elena", "Karthik", "Divya", "Aisha",
];

const LAST_NAMES: [&str; 48] = [
    "Fisher", "Harrison", "Sharma", "Patel", "Johnson", "Smith", "Brown", "Williams", "Jones",
    "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas",
    "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Nakamura", "Tanaka", "Schmidt",
    "Muller", "Weber", "Iyer", "Nair", "Reddy", "Kumar", "Singh", "Khan", "Rossi", "Bianchi",
    "Dubois", "Moreau", "Silva", "Santos", "Clark", "Lewis", "Walker", "Hall", "Young", "King",
    "Wright",
];

const DEPARTMENTS: [&str; 12] = [
    "Zylker Corp",
    "Engineering",
    "Sales",
    "Marketing",
    "Customer Support",
    "Finance",
    "Human Resources",
    "Operations",
    "Legal",
    "Product Management",
    "Design",
    "IT Services",
];

/// Index 0..=3 are given by depth in the management tree; the rest to staff.
const DESIGNATIONS: [&str; 15] = [
    "Chief Executive Officer",
    "Vice President",
    "Director",
    "Manager",
    "Leadership Staff",
    "Team Lead",
    "Senior Engineer",
    "Engineer",
    "Associate",
    "Analyst",
    "Consultant",
    "Specialist",
    "Coordinator",
    "Administrator",
    "Intern",
];

const TEAMS: [(&str, &str); 20] = [
    ("Platform", "Core platform and infrastructure"),
    ("Mobile Apps", "iOS and Android apps"),
    ("Web Frontend", "Everything in the browser"),
    ("Data", "Analytics and data pipelines"),
    ("Security", "Application and infrastructure security"),
    ("SRE", "Site reliability and on-call"),
    ("EMEA Sales", "Sales in Europe, Middle East and Africa"),
    ("APAC Sales", "Sales in Asia Pacific"),
    ("Americas Sales", "Sales in North and South America"),
    ("Brand", "Brand and communications"),
    ("Growth", "Growth marketing"),
    ("Tier 1 Support", "First line support"),
    ("Tier 2 Support", "Escalations"),
    ("Payroll", "Payroll and benefits"),
    ("Recruiting", "Hiring and onboarding"),
    ("Facilities", "Offices and equipment"),
    ("Compliance", "Audits and policies"),
    ("Roadmap", "Product planning"),
    ("UX Research", "User research"),
    ("Helpdesk", "Internal IT helpdesk"),
];

const WORK_LOCATIONS: [&str; 12] = [
    "C block, S-H12",
    "A block, F-1",
    "A block, F-2",
    "B block, G-4",
    "B block, S-3",
    "D block, F-7",
    "Chennai Estancia",
    "Austin Office",
    "London Office",
    "Berlin Office",
    "Tokyo Office",
    "Remote",
];

/// (time zone, offset in milliseconds, country, language). Offsets ignore DST.
pub(super) const ZONES: [(&str, i64, &str, &str); 8] = [
    ("Asia/Kolkata", 19_800_000, "India", "English"),
    ("America/New_York", -18_000_000, "United States", "English"),
    ("America/Chicago", -21_600_000, "United States", "English"),
    (
        "America/Los_Angeles",
        -28_800_000,
        "United States",
        "English",
    ),
    ("Europe/London", 0, "United Kingdom", "English"),
    ("Europe/Berlin", 3_600_000, "Germany", "German"),
    ("Asia/Tokyo", 32_400_000, "Japan", "Japanese"),
    ("Australia/Sydney", 36_000_000, "Australia", "English"),
];

/// Seeded cost centre by department index.
const COST_CENTERS: [&str; 12] = [
    "CC-100", "CC-101", "CC-102", "CC-103", "CC-104", "CC-105", "CC-106", "CC-107", "CC-108",
    "CC-109", "CC-110", "CC-111",
];
const SHIRT_SIZES: [&str; 5] = ["S", "M", "L", "XL", "XXL"];

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

/// `names` with seeded ids counting up by 1 000 from `base`.
fn named(names: &[&str], base: usize) -> Vec<Named> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Named {
            id: format!("1901318000001{:06}", base + 1_000 * i),
            name: name.to_string(),
        })
        .collect()
}

/// The seeded teams, still without participants.
fn seeded_teams(now: DateTime<Utc>) -> Vec<Team> {
    TEAMS
        .iter()
        .enumerate()
        .map(|(i, (name, description))| Team {
            id: format!("1901318000003{:06}", 110_001 + 17 * i),
            name,
            description,
            created: now - CDuration::days(400 + 13 * i as i64),
            active: i != 15,
            participants: 0,
        })
        .collect()
}

/// (id, department, depth) by seeding index, for the management tree.
type Tree = Vec<(u64, usize, u32)>;

/// User `i`'s (reporting_to, department, depth) in the management tree.
fn place(rng: &mut StdRng, i: usize, tree: &Tree) -> (Option<u64>, usize, u32) {
    // A 6-ary management tree: the parent was seeded earlier.
    if i == 0 {
        return (None, 0, 0);
    }
    let (pid, pdept, pdepth) = tree[(i - 1) / 6];
    let dept = if pdept != 0 && rng.gen_bool(0.8) {
        pdept
    } else {
        rng.gen_range(1..DEPARTMENTS.len())
    };
    (Some(pid), dept, pdepth + 1)
}

/// User `i`'s status: the owner is active, the others mostly.
fn seeded_status(rng: &mut StdRng, i: usize) -> Status {
    if i == 0 {
        return Status::Active;
    }
    match rng.gen_range(0..100) {
        0..=87 => Status::Active,
        88..=92 => Status::Inactive,
        93..=95 => Status::Pending,
        96..=97 => Status::ImportedActive,
        _ => Status::ImportedInactive,
    }
}

/// Up to three teams for one user, counted in the teams' participants.
fn join_teams(rng: &mut StdRng, teams: &mut [Team]) -> u32 {
    let mut team_mask = 0u32;
    for _ in 0..rng.gen_range(0..=3) {
        team_mask |= 1 << rng.gen_range(0..TEAMS.len());
    }
    for (t, team) in teams.iter_mut().enumerate() {
        if team_mask & (1 << t) != 0 {
            team.participants += 1;
        }
    }
    team_mask
}

/// User `i`'s (mobile, phone, extension).
fn contact(rng: &mut StdRng, i: usize) -> (String, String, String) {
    let mobile = format!(
        "+1 555 {:03} {:04}",
        rng.gen_range(0..1000),
        rng.gen_range(0..10_000)
    );
    let phone = if rng.gen_bool(0.3) {
        format!("+1 415 {:03} {:04}", rng.gen_range(0..1000), i % 10_000)
    } else {
        String::new()
    };
    let extension = if rng.gen_bool(0.9) {
        rng.gen_range(1000..10_000u32).to_string()
    } else {
        String::new()
    };
    (mobile, phone, extension)
}

/// Seeded user `i` with `id`; the random draws come in a fixed order, so
/// the organisation is deterministic in the seed.
fn seed_user(
    rng: &mut StdRng,
    (i, id): (usize, u64),
    tree: &mut Tree,
    teams: &mut [Team],
    now: DateTime<Utc>,
) -> User {
    let first = pick(rng, &FIRST_NAMES);
    let last = pick(rng, &LAST_NAMES);
    let email = format!(
        "{}.{}{}@{EMAIL_DOMAIN}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase(),
        i
    );
    let (reporting_to, department, depth) = place(rng, i, tree);
    tree.push((id, department, depth));
    let designation = if depth <= 3 {
        depth as usize
    } else {
        rng.gen_range(4..DESIGNATIONS.len())
    };
    let status = seeded_status(rng, i);
    let (tz, _, country, language) = pick(rng, &ZONES);
    let team_mask = join_teams(rng, teams);
    let usage = rng.gen_range(0..100_000u32);
    let (mobile, phone, extension) = contact(rng, i);
    User {
        id,
        email,
        first_name: Cow::Borrowed(first),
        last_name: Cow::Borrowed(last),
        display_name: None,
        employee_id: (100 + i).to_string(),
        mobile,
        phone,
        extension,
        work_location: Cow::Borrowed(pick(rng, &WORK_LOCATIONS)),
        status,
        timezone: Cow::Borrowed(tz),
        language: Cow::Borrowed(language),
        country: Cow::Borrowed(country),
        department: Some(department),
        designation: Some(designation),
        reporting_to,
        paid: i == 0 || rng.gen_bool(0.9),
        usage,
        teams: team_mask,
        tracked_modified: Some(
            now - CDuration::days(rng.gen_range(8..=400))
                - CDuration::seconds(rng.gen_range(0..86_400)),
        ),
        cost_center: Cow::Borrowed(COST_CENTERS[department]),
        shirt_size: Cow::Borrowed(pick(rng, &SHIRT_SIZES)),
    }
}

impl Org {
    /// Seed an organisation of `n` users (at least 1: the owner), deterministic in `seed`.
    /// Every seeded tracked modification is 8 to 400 days before `now`.
    pub(crate) fn seed(n: usize, seed: u64, now: DateTime<Utc>) -> Org {
        let n = n.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let departments = named(&DEPARTMENTS, 424_001);
        let designations = named(&DESIGNATIONS, 72_003);
        let mut teams = seeded_teams(now);
        let mut users = BTreeMap::new();
        let mut by_email = HashMap::with_capacity(n);
        let mut by_usage = BTreeSet::new();
        let mut tree: Tree = Vec::with_capacity(n);
        let mut id: u64 = 631_830_000 + rng.gen_range(0..1_000);
        for i in 0..n {
            id += rng.gen_range(1..=17u64);
            let user = seed_user(&mut rng, (i, id), &mut tree, &mut teams, now);
            by_email.insert(user.email.clone(), id);
            by_usage.insert((Reverse(user.usage), id));
            users.insert(id, user);
        }
        let owner = tree[0].0;
        Org {
            users,
            by_email,
            by_usage,
            departments,
            designations,
            teams,
            owner,
            next_id: id + 1,
        }
    }
}
