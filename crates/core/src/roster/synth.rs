//! Synthetic roster generation: deterministic, Danish-looking rosters for
//! tests, demos and load runs, at school, municipality or national scale.
//!
//! Every institution is generated from `(seed, index)` alone, so callers may
//! generate institutions in parallel and in any order. The generator has its
//! own small PRNG (SplitMix64), so its output does not change with the `rand`
//! crate's version.
//!
//! Nothing here is a real person's data:
//! - CPR numbers carry impossible dates (29 February in a year that is not a
//!   leap year, 30 and 31 February, 31 April, June, September, November), the
//!   two-digit birth year and four serial digits. Pupils' numbers are unique
//!   while no birth year holds more than 60,000 (leap years) or 70,000 pupils
//!   across the set; adults' numbers are unique for the first 1,400 indexes.
//! - E-mail addresses use the reserved `.example` top-level domain (RFC 2606),
//!   so nothing can ever be delivered to a real school or person.
//!
//! User ids look like the national `uniid`: four letters for the institution
//! index and four digits for the person's number there, so they never collide
//! between institutions. The only persons deliberately shared between
//! institutions are municipal consultants (PPR and the like) serving two
//! neighbouring institutions of one municipality, with the same record at
//! both. Within an institution about 2% of employees are also a pupil's
//! contact person, and some leaders also teach.

use super::model::{
    Actor, Address, ContactRelation, Cpr, Ended, Gender, Group, GroupKind, Institution,
    InstitutionKind as K, InstitutionRoster, Membership, Person, Phone, PhoneKind, Relation, Role,
    RoleKind,
};
use std::collections::HashSet;
use time::{macros::date, Date};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    School,
    Municipality,
    National,
}

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub institutions: usize,
    pub seed: u64,
}

impl SynthOptions {
    /// School: 1 institution; Municipality: 25; National: 1,300.
    pub fn for_scale(scale: Scale, seed: u64) -> Self {
        let institutions = match scale {
            Scale::School => 1,
            Scale::Municipality => PER_MUNICIPALITY,
            Scale::National => 1_300,
        };
        SynthOptions { institutions, seed }
    }
}

pub const SCHOOL_YEAR: &str = "2026/2027";
const YEAR_START: Date = date!(2026 - 08 - 01);
const YEAR_END: Date = date!(2027 - 07 - 31);
/// Institutions per municipality; index `i` is in municipality `i / 25`.
const PER_MUNICIPALITY: usize = 25;
/// Pupils' birth years are counted from this year.
const PUPIL_YEAR_BASE: i32 = 2000;
const PUPIL_YEARS: usize = 32;
const FIRST_ADULT_YEAR: i32 = 1961;
const LAST_ADULT_YEAR: i32 = 2001;
const ADULT_YEARS: usize = (LAST_ADULT_YEAR - FIRST_ADULT_YEAR + 1) as usize;
/// Adults' CPR slots are interleaved by institution index modulo this.
const ADULT_STRIDE: u32 = 1_400;
/// Person numbers from here on are reserved for shared consultants.
const SHARED_BASE: u32 = 9_000;
/// Impossible (day, month) pairs; the last only in years that are not leap years.
#[rustfmt::skip]
const IMPOSSIBLE: [(u32, u32); 7] = [(30, 2), (31, 2), (31, 4), (31, 6), (31, 9), (31, 11), (29, 2)];
/// Non-leap years for shared consultants, whose CPR numbers all use 29 February.
#[rustfmt::skip]
const SHARED_YEARS: [i32; 26] = [
    1962, 1963, 1965, 1966, 1967, 1969, 1970, 1971, 1973, 1974, 1975, 1977, 1978, 1979, 1981, 1982,
    1983, 1985, 1986, 1987, 1989, 1990, 1991, 1993, 1994, 1995,
];

/// One institution's roster; index in 0..opts.institutions. Deterministic for
/// (opts.seed, index) and independent of other indexes, so callers may
/// generate institutions in parallel and in any order.
pub fn institution(opts: &SynthOptions, index: usize) -> InstitutionRoster {
    let seed = opts.seed;
    let mut classes = Vec::with_capacity(40);
    let (tracks, levels) = plan(seed, index, |c| classes.push(c));
    // Pupils' CPR slots per birth year follow those of all lower indexes,
    // whose counts per year their plans alone determine.
    let mut pupil_next = [0u32; PUPIL_YEARS];
    for j in 0..index {
        plan(seed, j, |c| c.count_years(&mut pupil_next));
    }
    let (kind, muni) = (kind_at(index), municipality(index));
    let name = institution_name(kind, index);
    let pupils: u32 = classes.iter().map(|c| c.size).sum();
    let n = pupils as usize;
    let mut g = Gen {
        seed,
        index,
        kind,
        rng: Rng::new(seed, index, 2),
        muni,
        domain: format!("{}.{}.example", slug(&name), slug(muni.name)),
        next_person: 0,
        pupil_next,
        adult_used: [0; ADULT_YEARS],
        initials: HashSet::new(),
        persons: Vec::with_capacity(n * 5 / 2 + 120),
        roles: Vec::with_capacity(n + 120),
        groups: Vec::new(),
        memberships: Vec::with_capacity(n * 4 + 400),
        contacts: Vec::with_capacity(n * 2),
        families: Vec::with_capacity(n),
        candidates: Vec::new(),
        layout: Layout::default(),
    };
    g.build_groups(&classes, tracks, levels);
    g.shared_consultants();
    g.employees(pupils);
    g.pupils(&classes, pupils);
    InstitutionRoster {
        institution: Institution {
            number: (100_000 + (index * 7) % 900_000).to_string(),
            name,
            kind,
            municipality_code: Some(muni.code.to_owned()),
        },
        source_system: Some("synth".to_owned()),
        school_year: Some(SCHOOL_YEAR.to_owned()),
        persons: g.persons,
        roles: g.roles,
        groups: g.groups,
        memberships: g.memberships,
        contacts: g.contacts,
        ended: Ended::default(),
    }
}

// ---------------------------------------------------------------- randomness

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: small, fast and fixed, so output is stable across versions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: usize, stream: u64) -> Rng {
        Rng(mix(
            mix(seed ^ 0x7469_6C67_616E_6721) ^ mix(((index as u64) << 8) ^ stream)
        ))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo + 1)) as u32
    }
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
    /// True with probability `permille / 1000`.
    fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }
}

// ---------------------------------------------------------------- plans

/// A class (or day-care group) as planned: its size and its pupils' birth
/// years, which the CPR allocation across institutions depends on.
#[derive(Debug, Clone, Copy)]
struct Class {
    level: usize,
    track: usize,
    size: u32,
    /// The first `older` pupils were born the year before `year`.
    older: u32,
    year: i32,
    /// The others are born in `year .. year + span`, round robin.
    span: u32,
}

impl Class {
    fn birth_year(&self, j: u32) -> i32 {
        match j.checked_sub(self.older) {
            None => self.year - 1,
            Some(k) => self.year + (k % self.span) as i32,
        }
    }
    fn count_years(&self, acc: &mut [u32; PUPIL_YEARS]) {
        let base = (self.year - PUPIL_YEAR_BASE) as usize;
        acc[base - 1] += self.older;
        let (rest, span) = (self.size - self.older, self.span);
        for k in 0..span {
            acc[base + k as usize] += (rest + span - 1 - k) / span;
        }
    }
}

fn kind_at(index: usize) -> K {
    match index % PER_MUNICIPALITY {
        3 | 8 | 14 | 19 | 23 => K::DayCare,
        12 => K::UpperSecondary,
        _ => K::School,
    }
}

/// Plans an institution's classes; returns (tracks, levels).
fn plan(seed: u64, index: usize, mut each: impl FnMut(Class)) -> (usize, usize) {
    let mut rng = Rng::new(seed, index, 1);
    let kind = kind_at(index);
    let (tracks, levels) = match kind {
        K::DayCare => (4 + rng.index(4), 1),
        K::UpperSecondary => (6 + rng.index(5), 3),
        _ => (if rng.chance(600) { 3 } else { 2 }, 10),
    };
    for level in 0..levels {
        // Leap-year cohorts have one impossible date less for their CPR
        // numbers; more held-back pupils keep them within it.
        let (year, older_pct) = match kind {
            K::UpperSecondary => (2010 - level as i32, 20),
            _ if time::util::is_leap_year(2020 - level as i32) => (2020 - level as i32, 12),
            _ => (2020 - level as i32, 4),
        };
        for track in 0..tracks {
            let (size, year, span) = match kind {
                K::DayCare if track <= tracks / 3 => (rng.range(10, 14), 2024, 2),
                K::DayCare => (rng.range(18, 24), 2021, 3),
                K::UpperSecondary => (rng.range(24, 30), year, 1),
                _ => (rng.range(21, 28), year, 1),
            };
            let older = match kind {
                K::DayCare => 0,
                _ => (size * older_pct + rng.range(0, 99)) / 100,
            };
            each(Class {
                level,
                track,
                size,
                older,
                year,
                span,
            });
        }
    }
    (tracks, levels)
}

// ---------------------------------------------------------------- identifiers

fn user_id(seed: u64, index: usize, number: u32) -> String {
    const LETTERS: u64 = 26 * 26 * 26 * 26;
    let mut l = ((index as u64 % LETTERS) * 7_919 + mix(seed) % LETTERS) % LETTERS;
    // Bijective in `number` for each index: the letters already differ.
    let offset = mix(seed ^ ((index as u64) << 20) ^ 0x5EED) % 10_000;
    let mut d = (u64::from(number % 10_000) * 7_919 + offset) % 10_000;
    let mut b = [0u8; 8];
    for i in (0..4).rev() {
        b[i] = b'a' + (l % 26) as u8;
        b[i + 4] = b'0' + (d % 10) as u8;
        l /= 26;
        d /= 10;
    }
    b.iter().map(|&c| char::from(c)).collect()
}

fn scramble(n: u32, year: i32) -> u32 {
    (n % 10_000 * 7_919 + year.unsigned_abs() * 4_231) % 10_000
}

fn cpr(day: u32, month: u32, year: i32, serial: u32) -> Option<Cpr> {
    Cpr::parse(&format!(
        "{day:02}{month:02}{:02}{serial:04}",
        year.rem_euclid(100)
    ))
}

/// Slot `s` of a year: impossible date `s % dates`, serial from `s / dates`.
fn slot_cpr(year: i32, slot: u32, dates: u32) -> Option<Cpr> {
    let slot = slot % (dates * 10_000);
    let (d, m) = IMPOSSIBLE[(slot % dates) as usize];
    cpr(d, m, year, scramble(slot / dates, year))
}

fn date_in(rng: &mut Rng, year: i32) -> Option<Date> {
    Date::from_ordinal_date(year, rng.range(1, 365) as u16).ok()
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'æ' => out.push_str("ae"),
            'ø' => out.push_str("oe"),
            'å' => out.push_str("aa"),
            'é' => out.push('e'),
            'a'..='z' | '0'..='9' => out.push(c),
            ' ' | '-' if !out.is_empty() && !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Muni {
    code: &'static str,
    name: &'static str,
    postal: &'static str,
    city: &'static str,
}

fn municipality(index: usize) -> Muni {
    let mut f = MUNICIPALITIES[(index / PER_MUNICIPALITY) % MUNICIPALITIES.len()].split(';');
    let mut next = || f.next().unwrap_or_default();
    Muni {
        code: next(),
        name: next(),
        postal: next(),
        city: next(),
    }
}

fn institution_name(kind: K, index: usize) -> String {
    let (pos, muni) = (index % PER_MUNICIPALITY, index / PER_MUNICIPALITY);
    match kind {
        K::DayCare => DAYCARES[(pos / 5 + muni * 2) % DAYCARES.len()].to_owned(),
        K::UpperSecondary => format!("{} Gymnasium", municipality(index).name),
        _ => format!("{}skolen", SCHOOLS[(pos + muni * 3) % SCHOOLS.len()]),
    }
}

// ---------------------------------------------------------------- people

fn person(uid: String, given: &str, family: &str, female: bool, rng: &mut Rng) -> Person {
    Person {
        user_id: uid,
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        alias_given_name: None,
        alias_family_name: None,
        cpr: None,
        birth_date: None,
        gender: Some(match (rng.chance(2), female) {
            (true, _) => Gender::Other,
            (_, true) => Gender::Female,
            _ => Gender::Male,
        }),
        email: None,
        phones: Vec::new(),
        address: None,
        protected: false,
        source_system: None,
        local_person_id: None,
        photo_id: None,
    }
}

fn given_name(rng: &mut Rng, female: bool) -> &'static str {
    rng.pick(if female { GIRLS } else { BOYS })
}

fn mobile(rng: &mut Rng) -> Phone {
    let number = (20_000_000 + rng.below(10_000_000)).to_string();
    Phone {
        kind: PhoneKind::Mobile,
        number,
        protectable: rng.chance(80),
    }
}

fn protect(rng: &mut Rng, p: &mut Person, female: bool) {
    p.protected = true;
    p.alias_given_name = Some(given_name(rng, female).to_owned());
    p.alias_family_name = Some(rng.pick(FAMILY).to_owned());
    for ph in &mut p.phones {
        ph.protectable = true;
    }
}

/// A municipal consultant serving institution `owner` and the next one.
fn shared_consultant(seed: u64, owner: usize, k: u32) -> Person {
    let mut rng = Rng::new(seed, owner, 100 + u64::from(k));
    let female = rng.chance(700);
    let (given, family) = (given_name(&mut rng, female), rng.pick(FAMILY));
    let uid = user_id(seed, owner, SHARED_BASE + k);
    let mut p = person(uid, given, family, female, &mut rng);
    let (slot, years) = (owner as u32 * 2 + k, SHARED_YEARS.len() as u32);
    let year = SHARED_YEARS[(slot % years) as usize];
    p.cpr = cpr(29, 2, year, scramble(slot / years, year));
    p.birth_date = date_in(&mut rng, year);
    let muni = slug(municipality(owner).name);
    p.email = Some(format!("{}@{muni}-kommune.example", p.user_id));
    p.phones.push(mobile(&mut rng));
    p
}

fn shared_count(seed: u64, owner: usize) -> u32 {
    match kind_at(owner) {
        K::UpperSecondary => 0,
        _ => Rng::new(seed, owner, 3).below(3) as u32,
    }
}

/// Which groups pupils go into, by level.
#[derive(Default)]
struct Layout {
    /// The first group after the main groups; the grade-level groups.
    classes: usize,
    grade: Vec<usize>,
    teams: Vec<usize>,
    /// School: per level, two hold groups.
    holds: Vec<[usize; 2]>,
    /// Upper-secondary: per level, lines of study and electives.
    lines: Vec<[usize; 4]>,
    electives: Vec<[usize; 4]>,
}

#[rustfmt::skip]
const STAGES: [(usize, usize, &str); 3] = [(0, 4, "indskoling"), (4, 7, "mellemtrin"), (7, 10, "udskoling")];

/// A family's contact person: person, relation, custody, access level.
#[derive(Clone, Copy)]
struct Guardian(usize, Relation, bool, u8);

struct Family {
    name: &'static str,
    guardians: [Option<Guardian>; 2],
    protected: bool,
    address: Address,
}

struct Gen {
    seed: u64,
    index: usize,
    kind: K,
    rng: Rng,
    muni: Muni,
    domain: String,
    next_person: u32,
    pupil_next: [u32; PUPIL_YEARS],
    adult_used: [u32; ADULT_YEARS],
    initials: HashSet<String>,
    persons: Vec<Person>,
    roles: Vec<Role>,
    groups: Vec<Group>,
    memberships: Vec<Membership>,
    contacts: Vec<ContactRelation>,
    families: Vec<Family>,
    /// Employees who may also be a pupil's contact person: (person, family name, female).
    candidates: Vec<(usize, &'static str, bool)>,
    layout: Layout,
}

impl Gen {
    fn new_person(&mut self, given: &str, family: &str, female: bool) -> usize {
        let uid = user_id(self.seed, self.index, self.next_person);
        self.next_person += 1;
        self.persons
            .push(person(uid, given, family, female, &mut self.rng));
        self.persons.len() - 1
    }

    /// An adult born about `want`; moves a few years when the institution's
    /// share of CPR numbers for that year is used up.
    fn adult(&mut self, female: bool, family: &str, want: i32) -> usize {
        let want = want.clamp(FIRST_ADULT_YEAR, LAST_ADULT_YEAR);
        let free = |y: &i32| {
            (FIRST_ADULT_YEAR..=LAST_ADULT_YEAR).contains(y)
                && self.adult_used[(y - FIRST_ADULT_YEAR) as usize] < 60_000 / ADULT_STRIDE
        };
        let near = (0..ADULT_YEARS as i32)
            .flat_map(|d| [want - d, want + d])
            .find(free);
        let year = near.unwrap_or(want);
        let used = &mut self.adult_used[(year - FIRST_ADULT_YEAR) as usize];
        let slot = *used * ADULT_STRIDE + self.index as u32 % ADULT_STRIDE;
        *used += 1;
        let given = given_name(&mut self.rng, female);
        let pi = self.new_person(given, family, female);
        self.persons[pi].cpr = slot_cpr(year, slot, 6);
        self.persons[pi].birth_date = date_in(&mut self.rng, year);
        pi
    }

    fn group(&mut self, kind: GroupKind, name: String, level: Option<String>) -> usize {
        let (from, to) = (Some(YEAR_START), Some(YEAR_END));
        let id = slug(&name);
        self.groups.push(Group {
            id,
            name,
            kind,
            level,
            line: None,
            from,
            to,
        });
        self.groups.len() - 1
    }

    fn member(&mut self, group: usize, person: usize) {
        let group = self.groups[group].id.clone();
        let user_id = self.persons[person].user_id.clone();
        self.memberships.push(Membership { group, user_id });
    }

    fn level_label(&self, level: usize) -> String {
        match self.kind {
            K::UpperSecondary => format!("{}g", level + 1),
            _ => level.to_string(),
        }
    }

    /// Groups get ids from their names: "3.A" is `3a`, "Dansk 3.A-B" is `dansk-3a-b`.
    fn build_groups(&mut self, classes: &[Class], tracks: usize, levels: usize) {
        use GroupKind::*;
        for c in classes {
            let t = char::from(b"ABCDEFGHIJ"[c.track]);
            let name = match self.kind {
                K::DayCare if c.year >= 2024 => NURSERY[c.track % NURSERY.len()].to_owned(),
                K::DayCare => KINDERGARTEN[c.track % KINDERGARTEN.len()].to_owned(),
                K::UpperSecondary => format!("{}.{}", c.level + 1, t.to_ascii_lowercase()),
                _ => format!("{}.{t}", c.level),
            };
            let level = (self.kind != K::DayCare).then(|| self.level_label(c.level));
            let g = self.group(MainGroup, name, level);
            if self.kind != K::DayCare {
                self.groups[g].line = Some(t.to_string());
            }
        }
        self.layout.classes = self.groups.len();
        if self.kind == K::DayCare {
            return;
        }
        let first = usize::from(self.kind == K::UpperSecondary);
        for level in 0..levels {
            let name = format!("{}. årgang", level + first);
            let g = self.group(GradeLevel, name, Some(self.level_label(level)));
            self.layout.grade.push(g);
        }
        if self.kind == K::UpperSecondary {
            for level in 0..levels {
                let (mut lines, mut electives) = ([0; 4], [0; 4]);
                for k in 0..4 {
                    let l = Some(self.level_label(level));
                    lines[k] = self.group(Line, format!("{} {}.g", LINES[k], level + 1), l.clone());
                    electives[k] =
                        self.group(Class, format!("{} {}.g", ELECTIVES[k], level + 1), l);
                }
                self.layout.lines.push(lines);
                self.layout.electives.push(electives);
            }
            return;
        }
        for (_, _, name) in STAGES {
            let g = self.group(Team, format!("Team {name}"), None);
            self.layout.teams.push(g);
        }
        // Levels 0-6: Dansk for tracks A-B and C; levels 7-9: Tysk or Fransk.
        for level in 0..levels {
            let l = Some(level.to_string());
            let holds = match (level, tracks) {
                (0..=6, 2) => ["A-B", "A-B"].map(|t| format!("Dansk {level}.{t}")),
                (0..=6, _) => ["A-B", "C"].map(|t| format!("Dansk {level}.{t}")),
                _ => ["Tysk", "Fransk"].map(|t| format!("{t} {level}. årgang")),
            };
            let first = self.group(Class, holds[0].clone(), l.clone());
            let second = match holds[0] == holds[1] {
                true => first,
                false => self.group(Class, holds[1].clone(), l),
            };
            self.layout.holds.push([first, second]);
        }
    }

    /// An employee's or external's role; a second role keeps the initials.
    fn role(&mut self, pi: usize, role: RoleKind, occupation: &str) -> String {
        let user_id = self.persons[pi].user_id.clone();
        let last = self.roles.last().filter(|r| r.user_id == user_id);
        let initials = match last.and_then(|r| r.initials.clone()) {
            Some(i) => i,
            None => self.unique_initials(pi),
        };
        self.roles.push(Role {
            user_id,
            role,
            grade_level: None,
            student_number: None,
            main_group: None,
            initials: Some(initials.clone()),
            occupation: Some(occupation.to_owned()),
        });
        initials
    }

    /// Three or four letters from the names, unique in the institution.
    fn unique_initials(&mut self, pi: usize) -> String {
        let up = |s: &str| -> Vec<char> { s.chars().flat_map(char::to_uppercase).collect() };
        let p = &self.persons[pi];
        let (g, f) = (up(&p.given_name), up(&p.family_name));
        let at = |v: &[char], i: usize| v.get(i).copied().unwrap_or('X');
        let tries = [(2, 1), (1, 2), (2, 2), (1, 3), (3, 1)];
        for (a, b) in tries {
            let s: String = (0..a)
                .map(|i| at(&g, i))
                .chain((0..b).map(|i| at(&f, i)))
                .collect();
            if self.initials.insert(s.clone()) {
                return s;
            }
        }
        // No given name starts with Q, so these never clash with the above.
        let letter = |k: u32| char::from(b'A' + (k % 26) as u8);
        (0u32..)
            .map(|n| format!("Q{}{}{}", letter(n / 676), letter(n / 26), letter(n)))
            .find(|s| self.initials.insert(s.clone()))
            .unwrap_or_default()
    }

    fn shared_consultants(&mut self) {
        if self.kind == K::UpperSecondary {
            return;
        }
        // The previous institution's consultants, if in the same municipality.
        let first = (self.index - self.index % PER_MUNICIPALITY).max(self.index.saturating_sub(1));
        for owner in first..=self.index {
            for k in 0..shared_count(self.seed, owner) {
                self.persons.push(shared_consultant(self.seed, owner, k));
                let occupation = SHARED_OCCUPATIONS[k as usize % SHARED_OCCUPATIONS.len()];
                self.role(self.persons.len() - 1, RoleKind::Consultant, occupation);
            }
        }
    }

    fn employee(&mut self, role: RoleKind, occupation: &str) -> usize {
        let share = [620, 750][usize::from(role == RoleKind::Pedagogue)];
        let female = self.rng.chance(share);
        let family = self.rng.pick(FAMILY);
        let born = 2026 - self.rng.range(25, 65) as i32;
        let pi = self.adult(female, family, born);
        let initials = slug(&self.role(pi, role, occupation));
        let p = &mut self.persons[pi];
        p.email = Some(format!("{initials}@{}", self.domain));
        if self.rng.chance(650) {
            p.phones.push(mobile(&mut self.rng));
        }
        if self.rng.chance(7) {
            protect(&mut self.rng, p, female);
        }
        let born = p.birth_date.map_or(0, |d| d.year());
        if (1966..=1996).contains(&born) && role.actor() == Actor::Employee && self.rng.chance(35) {
            self.candidates.push((pi, family, female));
        }
        self.employee_groups(pi, role);
        pi
    }

    fn employees(&mut self, pupils: u32) {
        use RoleKind::*;
        let staff = match self.kind {
            K::DayCare => &STAFF[0],
            K::UpperSecondary => &STAFF[1],
            _ => &STAFF[2],
        };
        let n = (pupils / staff.pupils_per + self.rng.range(0, 6)).max(8) - 3;
        let consultants = &staff.consultants[..staff.consultants.len().min(1 + self.rng.index(2))];
        let mut count = 0;
        for (role, list) in [
            (Leader, staff.leader),
            (Management, staff.management),
            (Consultant, consultants),
        ] {
            for occupation in list {
                let pi = self.employee(role, occupation);
                count += 1;
                if role != Consultant && self.rng.chance(400) {
                    self.role(pi, staff.teacher.0, staff.teacher.1);
                }
            }
        }
        for _ in count..n {
            let (role, occupation) = match (self.kind, self.rng.below(100)) {
                (K::DayCare, 0..=59) => (Pedagogue, "Pædagog"),
                (K::DayCare, 60..=84) => (
                    Pedagogue,
                    self.rng
                        .pick(&["Pædagogisk assistent", "Pædagogmedhjælper"]),
                ),
                (K::UpperSecondary, 0..=94) => {
                    (Teacher, self.rng.pick(&["Lektor", "Lektor", "Adjunkt"]))
                }
                (K::School, 0..=71) => (Teacher, "Lærer"),
                (K::School, 72..=91) => (Pedagogue, "Pædagog"),
                _ => (Substitute, "Vikar"),
            };
            self.employee(role, occupation);
        }
        for _ in 0..self.rng.range(0, 2) {
            self.employee(Trainee, staff.trainee);
        }
        if self.kind != K::DayCare && self.rng.chance(500) {
            let occupation =
                self.rng
                    .pick(&["Sundhedsplejerske", "Musikskolelærer", "Talepædagog"]);
            self.employee(External, occupation);
        }
    }

    fn employee_groups(&mut self, pi: usize, role: RoleKind) {
        use RoleKind::*;
        let classes = self.layout.classes;
        let mut chosen = Vec::with_capacity(6);
        match self.kind {
            K::DayCare => {
                let n = match role {
                    Pedagogue if self.rng.chance(300) => 2,
                    Pedagogue | Substitute | Trainee => 1,
                    _ => 0,
                };
                chosen.extend((0..n).map(|_| self.rng.index(classes)));
            }
            K::UpperSecondary => {
                let n = match role {
                    Teacher => 3,
                    Trainee => 1,
                    _ => 0,
                };
                chosen.extend((0..n).map(|_| self.rng.index(classes)));
                if role == Teacher {
                    let level = self.rng.index(self.layout.electives.len());
                    chosen.push(self.rng.pick(&self.layout.electives[level]));
                }
            }
            _ => {
                let tracks = classes / 10;
                let s = match role {
                    Pedagogue if self.rng.chance(800) => 0,
                    _ => self.rng.index(3),
                };
                let (lo, hi, _) = STAGES[s];
                let (n, hold) = match role {
                    Teacher => (2, true),
                    Pedagogue => (1 + self.rng.index(2), false),
                    Trainee => (1, false),
                    _ => (0, false),
                };
                if matches!(
                    role,
                    Teacher | Pedagogue | Trainee | Substitute | Management
                ) {
                    chosen.push(self.layout.teams[s]);
                }
                for _ in 0..n {
                    let level = lo + self.rng.index(hi - lo);
                    chosen.push(level * tracks + self.rng.index(tracks));
                }
                if hold {
                    chosen.push(self.layout.holds[lo + self.rng.index(hi - lo)][0]);
                }
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        for g in chosen {
            self.member(g, pi);
        }
    }

    fn address(&mut self) -> Address {
        let street = self.rng.pick(STREETS);
        let number = self.rng.range(1, 140);
        let letter = if self.rng.chance(100) { "B" } else { "" };
        Address {
            street: Some(format!("{street} {number}{letter}")),
            postal_code: Some(self.muni.postal.to_owned()),
            city: Some(self.muni.city.to_owned()),
            municipality_code: Some(self.muni.code.to_owned()),
            country: None,
        }
    }

    /// A new contact person for a new family.
    fn guardian(
        &mut self,
        relation: Relation,
        family: &'static str,
        child: i32,
        f: &Family,
    ) -> Guardian {
        let (female, age, surname) = match relation {
            Relation::Mother if self.rng.chance(650) => (true, self.rng.range(22, 44), family),
            Relation::Mother => (true, self.rng.range(22, 44), self.rng.pick(FAMILY)),
            Relation::Father => (false, self.rng.range(24, 48), family),
            _ => (
                self.rng.chance(600),
                self.rng.range(25, 60),
                self.rng.pick(FAMILY),
            ),
        };
        let pi = self.adult(female, surname, child - age as i32);
        let (with_email, with_phone) = (self.rng.chance(880), self.rng.chance(920));
        let p = &mut self.persons[pi];
        if with_email {
            let provider = self.rng.pick(MAIL_PROVIDERS);
            let (given, family) = (slug(&p.given_name), slug(&p.family_name));
            p.email = Some(format!("{given}.{family}.{}@{provider}", p.user_id));
        }
        if with_phone {
            p.phones.push(mobile(&mut self.rng));
        }
        p.address = Some(f.address.clone());
        if f.protected {
            protect(&mut self.rng, p, female);
        }
        let custody = match relation {
            Relation::Mother | Relation::Father => self.rng.chance(960),
            Relation::Other => self.rng.chance(400),
            Relation::Official => self.rng.chance(300),
        };
        let access = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3][self.rng.index(10)];
        Guardian(pi, relation, custody, access)
    }

    fn new_family(&mut self, child: i32, families: u64) -> usize {
        let protected = self.rng.chance(10);
        let address = self.address();
        let n = match self.kind {
            K::UpperSecondary => [0, 0, 0, 1, 1, 1, 1, 2, 2, 2][self.rng.index(10)],
            _ if self.rng.chance(660) => 2,
            _ => 1,
        };
        let name = self.rng.pick(FAMILY);
        let guardians = [None, None];
        let mut f = Family {
            name,
            guardians,
            protected,
            address,
        };
        let mut taken = None;
        let employees = self.candidates.len() as u64;
        if n > 0 && employees > 0 && self.rng.below(families) < employees * 2 {
            let (person, family, female) = self
                .candidates
                .swap_remove(self.rng.index(employees as usize));
            let relation = [Relation::Father, Relation::Mother][usize::from(female)];
            f.name = family;
            self.persons[person].address = Some(f.address.clone());
            f.guardians[0] = Some(Guardian(person, relation, true, 1));
            taken = Some(relation);
        }
        for slot in usize::from(taken.is_some())..n {
            let relation = match (n, slot, taken) {
                (2, _, Some(Relation::Mother)) | (2, 1, None) if self.rng.chance(50) => {
                    Relation::Other
                }
                (2, _, Some(Relation::Mother)) | (2, 1, None) => Relation::Father,
                (2, _, _) => Relation::Mother,
                _ => match self.rng.below(20) {
                    0..=11 => Relation::Mother,
                    12..=16 => Relation::Father,
                    17 | 18 => Relation::Other,
                    _ => Relation::Official,
                },
            };
            f.guardians[slot] = Some(self.guardian(relation, f.name, child, &f));
        }
        self.families.push(f);
        self.families.len() - 1
    }

    fn pupils(&mut self, classes: &[Class], pupils: u32) {
        let role = match self.kind {
            K::DayCare => RoleKind::Child,
            K::UpperSecondary => RoleKind::Student,
            _ => RoleKind::Pupil,
        };
        let families = u64::from(pupils * 88 / 100).max(1);
        for (ci, c) in classes.iter().enumerate() {
            for j in 0..c.size {
                let year = c.birth_year(j);
                let fi = match self.families.len() {
                    len if len > 0 && self.rng.chance(120) => self.rng.index(len),
                    _ => self.new_family(year, families),
                };
                let female = self.rng.chance(490);
                let given = given_name(&mut self.rng, female);
                let pi = self.new_person(given, self.families[fi].name, female);
                let slot = &mut self.pupil_next[(year - PUPIL_YEAR_BASE) as usize];
                let dates = 7 - u32::from(time::util::is_leap_year(year));
                let cpr = slot_cpr(year, *slot, dates);
                *slot += 1;
                let family = &self.families[fi];
                let p = &mut self.persons[pi];
                p.cpr = cpr;
                p.birth_date = date_in(&mut self.rng, year);
                p.address = Some(family.address.clone());
                if matches!(self.kind, K::UpperSecondary)
                    || (self.kind == K::School && c.level >= 3)
                {
                    p.email = Some(format!("{}@{}", p.user_id, self.domain));
                }
                if self.kind == K::UpperSecondary && self.rng.chance(700) {
                    p.phones.push(mobile(&mut self.rng));
                }
                if family.protected {
                    protect(&mut self.rng, p, female);
                }
                let user_id = p.user_id.clone();
                for &Guardian(gi, relation, custody, access) in family.guardians.iter().flatten() {
                    self.contacts.push(ContactRelation {
                        pupil: user_id.clone(),
                        contact: self.persons[gi].user_id.clone(),
                        relation,
                        custody,
                        access_level: Some(access),
                    });
                }
                self.roles.push(Role {
                    user_id,
                    role,
                    grade_level: (self.kind != K::DayCare).then(|| self.level_label(c.level)),
                    student_number: Some(format!("{:05}", 10_000 + self.next_person)),
                    main_group: Some(self.groups[ci].id.clone()),
                    initials: None,
                    occupation: None,
                });
                self.pupil_groups(pi, ci, c);
            }
        }
    }

    fn pupil_groups(&mut self, pi: usize, ci: usize, c: &Class) {
        self.member(ci, pi);
        if let Some(&g) = self.layout.grade.get(c.level) {
            self.member(g, pi);
        }
        match self.kind {
            K::School => {
                let stage = STAGES.iter().position(|s| c.level < s.1).unwrap_or(0);
                self.member(self.layout.teams[stage], pi);
                let second = match c.level {
                    0..=6 => c.track >= 2,
                    _ => self.rng.chance(380),
                };
                self.member(self.layout.holds[c.level][usize::from(second)], pi);
            }
            K::UpperSecondary => {
                let line = self.rng.pick(&self.layout.lines[c.level]);
                let elective = self.rng.pick(&self.layout.electives[c.level]);
                self.member(line, pi);
                self.member(elective, pi);
            }
            _ => {}
        }
    }
}

struct Staff {
    pupils_per: u32,
    teacher: (RoleKind, &'static str),
    leader: &'static [&'static str],
    management: &'static [&'static str],
    consultants: &'static [&'static str],
    trainee: &'static str,
}

#[rustfmt::skip]
static STAFF: [Staff; 3] = [
    Staff { pupils_per: 6, teacher: (RoleKind::Pedagogue, "Pædagog"), leader: &["Dagtilbudsleder"],
        management: &["Souschef"], consultants: &[], trainee: "Pædagogstuderende" },
    Staff { pupils_per: 10, teacher: (RoleKind::Teacher, "Lektor"), leader: &["Rektor"],
        management: &["Vicerektor", "Uddannelsesleder", "Uddannelsesleder"],
        consultants: &["Studievejleder", "Studievejleder"], trainee: "Pædagogikumkandidat" },
    Staff { pupils_per: 9, teacher: (RoleKind::Teacher, "Lærer"), leader: &["Skoleleder"],
        management: &["Viceskoleleder", "Afdelingsleder"],
        consultants: &["Læsevejleder", "Matematikvejleder", "AKT-vejleder"], trainee: "Lærerstuderende" },
];

// ---------------------------------------------------------------- word lists

#[rustfmt::skip]
const GIRLS: &[&str] = &[
    "Anna", "Emma", "Ida", "Sofie", "Freja", "Clara", "Laura", "Alma", "Ella", "Karla", "Josefine", "Mathilde", "Agnes",
    "Nora", "Olivia", "Lærke", "Asta", "Liva", "Ellen", "Marie", "Signe", "Sara", "Julie", "Caroline", "Emilie", "Maja",
    "Frida", "Luna", "Vigga", "Esther", "Astrid", "Ingrid", "Katrine", "Mette", "Hanne", "Susanne", "Lene", "Camilla",
    "Louise", "Charlotte", "Helle", "Pia", "Tina", "Trine", "Maria", "Anne", "Kirsten", "Birgitte", "Rikke", "Stine",
    "Line", "Malene", "Dorthe", "Henriette", "Karen", "Bodil", "Thea", "Sigrid", "Yasmin", "Fatima", "Åse", "Søs",
];
#[rustfmt::skip]
const BOYS: &[&str] = &[
    "William", "Noah", "Oscar", "Lucas", "Carl", "Victor", "Alfred", "Emil", "Oliver", "Aksel", "Valdemar", "Magnus",
    "August", "Malthe", "Elias", "Arthur", "Theo", "Frederik", "Anton", "Felix", "Johan", "Storm", "Villads", "Mads",
    "Rasmus", "Mikkel", "Jonas", "Christian", "Søren", "Jens", "Peter", "Lars", "Henrik", "Thomas", "Martin", "Anders",
    "Niels", "Jørgen", "Michael", "Jesper", "Morten", "Kasper", "Nikolaj", "Simon", "Mathias", "Sebastian", "Tobias",
    "Benjamin", "Asger", "Bjørn", "Esben", "Kristian", "Ole", "Torben", "Troels", "Ulrik", "Bo", "Steffen", "Ali", "Omar",
];
#[rustfmt::skip]
const FAMILY: &[&str] = &[
    "Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen", "Jørgensen",
    "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Christiansen", "Poulsen", "Johansen", "Møller", "Mortensen",
    "Knudsen", "Jakobsen", "Mikkelsen", "Olesen", "Frederiksen", "Laursen", "Henriksen", "Lund", "Schmidt", "Eriksen",
    "Holm", "Kristiansen", "Clausen", "Simonsen", "Svendsen", "Andreasen", "Iversen", "Østergaard", "Jeppesen",
    "Vestergaard", "Nissen", "Lauridsen", "Kjær", "Jespersen", "Mogensen", "Nørgaard", "Jepsen", "Frandsen",
    "Søndergaard", "Bertelsen", "Dahl", "Lassen", "Bech", "Friis", "Winther", "Kirkegaard", "Ahmed", "Yilmaz", "Nguyen",
    "Hussein",
];
#[rustfmt::skip]
const STREETS: &[&str] = &[
    "Skolevej", "Kirkevej", "Bakkevej", "Engvej", "Skovvej", "Møllevej", "Birkevej", "Egevej", "Lindevej", "Ahornvej",
    "Vestergade", "Østergade", "Nørregade", "Søndergade", "Stationsvej", "Parkvej", "Rosenvænget", "Hybenvej",
    "Kastanie Allé", "Fasanvej", "Bøgevej", "Solsikkevej", "Lærkevej", "Mågevej", "Strandvejen", "Åvænget", "Humlehaven",
    "Fyrrevej", "Tjørnevej", "Kildevej",
];
/// At least 25, so a municipality's schools all have different names.
#[rustfmt::skip]
const SCHOOLS: &[&str] = &[
    "Bakke", "Søndervang", "Nordvang", "Vesterbro", "Østervang", "Engdal", "Skovvang", "Strand", "Rosenhøj", "Lindevang",
    "Hasle", "Bavne", "Mølle", "Kirkebakke", "Holme", "Fjord", "Højvang", "Ellekær", "Tranehave", "Solhøj", "Åby",
    "Lystrup", "Bøgeskov", "Egebjerg", "Tinghøj", "Kildevang", "Ådal", "Havbakke",
];
#[rustfmt::skip]
const DAYCARES: &[&str] = &[
    "Børnehuset Mælkebøtten", "Børnehaven Solsikken", "Vuggestuen Myretuen", "Børnehuset Regnbuen",
    "Daginstitutionen Troldehøj", "Børnehaven Spiren", "Børnehuset Skovtrolden", "Dagtilbuddet Kastanjen",
    "Børnehuset Humlebien", "Børnehaven Bakketoppen", "Børnehuset Lærkereden", "Daginstitutionen Søstjernen",
];
const NURSERY: &[&str] = &["Mariehønsene", "Sommerfuglene", "Larverne", "Kyllingerne"];
#[rustfmt::skip]
const KINDERGARTEN: &[&str] =
    &["Bøgegruppen", "Egegruppen", "Birkegruppen", "Lindegruppen", "Frøerne", "Pindsvinene", "Egernene"];
const LINES: [&str; 4] = ["Naturvidenskab", "Samfundsfag", "Sprog", "Musik"];
const ELECTIVES: [&str; 4] = ["Matematik A", "Kemi B", "Psykologi C", "Musik B"];
const SHARED_OCCUPATIONS: &[&str] = &["PPR-psykolog", "Tale-hørekonsulent"];
const MAIL_PROVIDERS: &[&str] = &[
    "post.example",
    "mail.example",
    "net.example",
    "online.example",
];

/// Real municipality codes with their main town (code;name;postal code;town), 25
/// institutions each.
#[rustfmt::skip]
const MUNICIPALITIES: &[&str] = &[
    "101;København;2300;København S", "147;Frederiksberg;2000;Frederiksberg", "151;Ballerup;2750;Ballerup",
    "157;Gentofte;2820;Gentofte", "159;Gladsaxe;2860;Søborg", "167;Hvidovre;2650;Hvidovre",
    "169;Høje-Taastrup;2630;Taastrup", "173;Lyngby-Taarbæk;2800;Kongens Lyngby", "175;Rødovre;2610;Rødovre",
    "185;Tårnby;2770;Kastrup", "190;Furesø;3500;Værløse", "217;Helsingør;3000;Helsingør",
    "219;Hillerød;3400;Hillerød", "230;Rudersdal;2840;Holte", "240;Egedal;3650;Ølstykke",
    "250;Frederikssund;3600;Frederikssund", "253;Greve;2670;Greve", "259;Køge;4600;Køge",
    "265;Roskilde;4000;Roskilde", "270;Gribskov;3200;Helsinge", "306;Odsherred;4500;Nykøbing Sj",
    "316;Holbæk;4300;Holbæk", "326;Kalundborg;4400;Kalundborg", "329;Ringsted;4100;Ringsted",
    "330;Slagelse;4200;Slagelse", "340;Sorø;4180;Sorø", "360;Lolland;4930;Maribo", "370;Næstved;4700;Næstved",
    "376;Guldborgsund;4800;Nykøbing F", "390;Vordingborg;4760;Vordingborg", "400;Bornholm;3700;Rønne",
    "410;Middelfart;5500;Middelfart", "420;Assens;5610;Assens", "430;Faaborg-Midtfyn;5600;Faaborg",
    "450;Nyborg;5800;Nyborg", "461;Odense;5000;Odense C", "479;Svendborg;5700;Svendborg",
    "510;Haderslev;6100;Haderslev", "540;Sønderborg;6400;Sønderborg", "561;Esbjerg;6700;Esbjerg",
    "573;Varde;6800;Varde", "580;Aabenraa;6200;Aabenraa", "607;Fredericia;7000;Fredericia",
    "615;Horsens;8700;Horsens", "621;Kolding;6000;Kolding", "630;Vejle;7100;Vejle", "657;Herning;7400;Herning",
    "661;Holstebro;7500;Holstebro", "730;Randers;8900;Randers C", "740;Silkeborg;8600;Silkeborg",
    "746;Skanderborg;8660;Skanderborg", "751;Aarhus;8000;Aarhus C", "779;Skive;7800;Skive",
    "791;Viborg;8800;Viborg", "813;Frederikshavn;9900;Frederikshavn", "851;Aalborg;9000;Aalborg",
    "860;Hjørring;9800;Hjørring",
];

#[cfg(test)]
mod tests;
