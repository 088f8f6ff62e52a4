//! Alarms, as LoongCollector raises them: a type (`PARSE_LOG_FAIL_ALARM`…),
//! a level (1 warning, 2 error, 3 critical), the config at fault and a
//! message, aggregated per [`ALARM_WINDOW`] (30 s) by type, config and
//! level: the first message is kept and the occurrences are counted.
//!
//! The SDK raises its alarms into the process-wide hub [`global`]; an
//! embedder reads them from there ([`Alarms::recent`], [`Alarms::since`]),
//! as the agent's `/status` endpoint and `input_internal_alarms` do.
//!
//! ```
//! use logtail_sdk::alarms::{AlarmType, Alarms};
//! let alarms = Alarms::default();
//! alarms.raise(AlarmType::ParseLogFail, "app", "processors[0]: not JSON: abc");
//! alarms.raise(AlarmType::ParseLogFail, "app", "processors[0]: not JSON: def");
//! let recent = alarms.recent();
//! assert_eq!(recent.len(), 1);
//! assert_eq!(recent[0].alarm_type, "PARSE_LOG_FAIL_ALARM");
//! assert_eq!(recent[0].count, 2);
//! assert_eq!(recent[0].message, "processors[0]: not JSON: abc");
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Alarms of one type, config and level within this window are one alarm
/// with a count (LoongCollector's `logtail_alarm_interval`).
pub const ALARM_WINDOW: Duration = Duration::from_secs(30);

/// How many aggregated alarms are kept (the oldest go first).
pub const ALARMS_KEPT: usize = 1000;

/// The alarm types the SDK raises, with LoongCollector's names and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AlarmType {
    /// `SEND_QUOTA_EXCEED_ALARM` (5): SLS answered that a quota is exceeded.
    SendQuotaExceed,
    /// `LOGTAIL_CRASH_ALARM` (6): the worker was restarted by its supervisor.
    LogtailCrash,
    /// `DISCARD_DATA_ALARM` (9): data was given up (not deliverable, not buffered).
    DiscardData,
    /// `READ_LOG_DELAY_ALARM` (10): a file more than 200 MiB behind for 60 s.
    ReadLogDelay,
    /// `REGEX_MATCH_ALARM` (18): a regex processor did not match.
    RegexMatch,
    /// `CATEGORY_CONFIG_ALARM` (23): a pipeline config failed to load or start.
    CategoryConfig,
    /// `SPLIT_LOG_FAIL_ALARM` (27): lines that belonged to no multi-line event.
    SplitLogFail,
    /// `SEND_DATA_FAIL_ALARM` (29): a flusher failed to send (retried).
    SendDataFail,
    /// `PARSE_TIME_FAIL_ALARM` (30): a time did not parse.
    ParseTimeFail,
    /// `OUTDATED_LOG_ALARM` (31): events dropped outside the time window.
    OutdatedLog,
    /// `PARSE_LOG_FAIL_ALARM` (35): a parser (JSON, delimiter…) failed.
    ParseLogFail,
}

impl AlarmType {
    /// Every type, in LoongCollector's order.
    pub const ALL: [AlarmType; 11] = [
        AlarmType::SendQuotaExceed,
        AlarmType::LogtailCrash,
        AlarmType::DiscardData,
        AlarmType::ReadLogDelay,
        AlarmType::RegexMatch,
        AlarmType::CategoryConfig,
        AlarmType::SplitLogFail,
        AlarmType::SendDataFail,
        AlarmType::ParseTimeFail,
        AlarmType::OutdatedLog,
        AlarmType::ParseLogFail,
    ];

    /// LoongCollector's name, e.g. `PARSE_LOG_FAIL_ALARM`.
    pub fn name(self) -> &'static str {
        match self {
            AlarmType::SendQuotaExceed => "SEND_QUOTA_EXCEED_ALARM",
            AlarmType::LogtailCrash => "LOGTAIL_CRASH_ALARM",
            AlarmType::DiscardData => "DISCARD_DATA_ALARM",
            AlarmType::ReadLogDelay => "READ_LOG_DELAY_ALARM",
            AlarmType::RegexMatch => "REGEX_MATCH_ALARM",
            AlarmType::CategoryConfig => "CATEGORY_CONFIG_ALARM",
            AlarmType::SplitLogFail => "SPLIT_LOG_FAIL_ALARM",
            AlarmType::SendDataFail => "SEND_DATA_FAIL_ALARM",
            AlarmType::ParseTimeFail => "PARSE_TIME_FAIL_ALARM",
            AlarmType::OutdatedLog => "OUTDATED_LOG_ALARM",
            AlarmType::ParseLogFail => "PARSE_LOG_FAIL_ALARM",
        }
    }

    /// LoongCollector's number (`AlarmType` enum of `AlarmManager.h`).
    pub fn code(self) -> u32 {
        match self {
            AlarmType::SendQuotaExceed => 5,
            AlarmType::LogtailCrash => 6,
            AlarmType::DiscardData => 9,
            AlarmType::ReadLogDelay => 10,
            AlarmType::RegexMatch => 18,
            AlarmType::CategoryConfig => 23,
            AlarmType::SplitLogFail => 27,
            AlarmType::SendDataFail => 29,
            AlarmType::ParseTimeFail => 30,
            AlarmType::OutdatedLog => 31,
            AlarmType::ParseLogFail => 35,
        }
    }

    /// The level it is raised at: 1 warning, 2 error, 3 critical, after
    /// LoongCollector's rule for levels: 1 for a single failure that does
    /// not hold up the flow (a line that did not parse, one send that
    /// failed and is retried), 2 for what puts the flow at risk (a quota,
    /// a backlog), 3 for lost data, an unusable config or a crash.
    pub fn level(self) -> u8 {
        match self {
            AlarmType::LogtailCrash | AlarmType::DiscardData | AlarmType::CategoryConfig => 3,
            AlarmType::SendQuotaExceed | AlarmType::ReadLogDelay => 2,
            AlarmType::SendDataFail
            | AlarmType::RegexMatch
            | AlarmType::SplitLogFail
            | AlarmType::ParseTimeFail
            | AlarmType::OutdatedLog
            | AlarmType::ParseLogFail => 1,
        }
    }

    /// The type named `name` (`PARSE_LOG_FAIL_ALARM`…).
    pub fn from_name(name: &str) -> Option<AlarmType> {
        AlarmType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One aggregated alarm: every occurrence of a type, config and level
/// within one [`ALARM_WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Alarm {
    /// The position of this alarm in the hub's history (1, 2, …): a reader
    /// asks for what came after the last one it saw ([`Alarms::since`]).
    pub seq: u64,
    /// LoongCollector's name of the type, e.g. `PARSE_LOG_FAIL_ALARM`.
    pub alarm_type: &'static str,
    /// 1 warning, 2 error, 3 critical.
    pub level: u8,
    /// The first message of the window.
    pub message: String,
    /// Occurrences in the window.
    pub count: u64,
    /// The pipeline config at fault (empty for the agent itself).
    pub config: String,
    /// When the first occurrence was raised (Unix seconds).
    pub first_seen_unix: u64,
    /// When the last occurrence was raised (Unix seconds).
    pub last_seen_unix: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every aggregated alarm kept, oldest first; the open windows are
    /// among them (found through `open`).
    history: VecDeque<Alarm>,
    /// The open window of each (type, config, level): its `seq`.
    open: BTreeMap<(&'static str, String, u8), u64>,
    next_seq: u64,
    /// Occurrences per type since the start.
    totals: BTreeMap<&'static str, u64>,
}

/// Alarms raised and aggregated; see the [module](self).
#[derive(Debug, Default)]
pub struct Alarms {
    inner: Mutex<Inner>,
}

/// The process-wide hub the SDK raises its alarms into.
pub fn global() -> &'static Alarms {
    static GLOBAL: OnceLock<Alarms> = OnceLock::new();
    GLOBAL.get_or_init(Alarms::default)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where the alarm `seq` is in `history`, if it is still there and its
/// window is still open at `now`.
fn open_index(history: &VecDeque<Alarm>, seq: u64, now: u64) -> Option<usize> {
    let first = history.front()?.seq;
    let idx = usize::try_from(seq.checked_sub(first)?).ok()?;
    history
        .get(idx)
        .filter(|a| a.seq == seq && now < a.first_seen_unix.saturating_add(ALARM_WINDOW.as_secs()))
        .map(|_| idx)
}

impl Alarms {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Raises one occurrence of `kind` for `config` (empty: the agent).
    pub fn raise(&self, kind: AlarmType, config: &str, message: &str) {
        self.raise_n(kind, config, message, 1);
    }

    /// Raises `count` occurrences at once (e.g. the events of a batch that
    /// failed to parse); `count` 0 raises nothing.
    pub fn raise_n(&self, kind: AlarmType, config: &str, message: &str, count: u64) {
        self.raise_at(kind, config, message, count, unix_now());
    }

    /// [`Alarms::raise_n`] at the given time (Unix seconds).
    pub fn raise_at(&self, kind: AlarmType, config: &str, message: &str, count: u64, now: u64) {
        if count == 0 {
            return;
        }
        let name = kind.name();
        let level = kind.level();
        let mut inner = self.lock();
        *inner.totals.entry(name).or_default() += count;
        let key = (name, config.to_owned(), level);
        let open_idx = inner
            .open
            .get(&key)
            .and_then(|&seq| open_index(&inner.history, seq, now));
        if let Some(a) = open_idx.and_then(|i| inner.history.get_mut(i)) {
            a.count += count;
            a.last_seen_unix = now;
            return;
        }
        // A new window: first forget the windows that closed (or whose
        // alarm left the history), so that the map holds the open ones
        // only and does not grow as configs come and go.
        let Inner { history, open, .. } = &mut *inner;
        open.retain(|_, seq| open_index(history, *seq, now).is_some());
        inner.next_seq += 1;
        let seq = inner.next_seq;
        inner.history.push_back(Alarm {
            seq,
            alarm_type: name,
            level,
            message: message.to_owned(),
            count,
            config: config.to_owned(),
            first_seen_unix: now,
            last_seen_unix: now,
        });
        inner.open.insert(key, seq);
        while inner.history.len() > ALARMS_KEPT {
            inner.history.pop_front();
        }
    }

    /// The alarms kept, oldest first (the open windows included).
    pub fn recent(&self) -> Vec<Alarm> {
        self.lock().history.iter().cloned().collect()
    }

    /// The alarms whose window closed, with a `seq` above `after`, oldest
    /// first, as of `now` (Unix seconds): what a reader that saw up to
    /// `after` has not seen yet, each once and complete.
    pub fn since(&self, after: u64, now: u64) -> Vec<Alarm> {
        self.lock()
            .history
            .iter()
            .filter(|a| {
                a.seq > after && now >= a.first_seen_unix.saturating_add(ALARM_WINDOW.as_secs())
            })
            .cloned()
            .collect()
    }

    /// Occurrences per type since the start (for `logtail_alarms_total`).
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
        self.lock().totals.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_within_a_window_are_one_alarm_with_the_first_message() {
        let a = Alarms::default();
        a.raise_at(AlarmType::ParseLogFail, "app", "first", 3, 1000);
        a.raise_at(AlarmType::ParseLogFail, "app", "second", 2, 1029);
        a.raise_at(AlarmType::ParseLogFail, "other", "x", 1, 1001);
        a.raise_at(AlarmType::RegexMatch, "app", "y", 1, 1001);
        let r = a.recent();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].message.as_str(), r[0].count), ("first", 5));
        assert_eq!(r[0].last_seen_unix, 1029);
        assert_eq!(r[0].level, 1);
        // The next window starts a new alarm.
        a.raise_at(AlarmType::ParseLogFail, "app", "third", 1, 1030);
        let r = a.recent();
        assert_eq!(r.len(), 4);
        assert_eq!((r[3].message.as_str(), r[3].count), ("third", 1));
        assert_eq!(a.totals()["PARSE_LOG_FAIL_ALARM"], 7);
        assert_eq!(a.totals()["REGEX_MATCH_ALARM"], 1);
    }

    #[test]
    fn since_gives_closed_windows_once() {
        let a = Alarms::default();
        a.raise_at(AlarmType::LogtailCrash, "", "killed by signal 9", 1, 100);
        assert!(a.since(0, 110).is_empty(), "the window is still open");
        let closed = a.since(0, 130);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].level, 3);
        assert!(a.since(closed[0].seq, 200).is_empty());
        a.raise_at(AlarmType::LogtailCrash, "", "again", 1, 200);
        assert_eq!(a.since(closed[0].seq, 300)[0].message, "again");
    }

    #[test]
    fn history_is_bounded() {
        let a = Alarms::default();
        for i in 0..(ALARMS_KEPT as u64 + 10) {
            a.raise_at(AlarmType::SendDataFail, &format!("c{i}"), "m", 1, 5);
        }
        let r = a.recent();
        assert_eq!(r.len(), ALARMS_KEPT);
        assert_eq!(r[0].seq, 11);
        // The open window of a dropped alarm starts anew.
        a.raise_at(AlarmType::SendDataFail, "c0", "m", 1, 6);
        assert_eq!(a.recent().last().map(|x| x.count), Some(1));
    }

    #[test]
    fn closed_windows_leave_the_open_map() {
        let a = Alarms::default();
        for i in 0..100 {
            a.raise_at(AlarmType::ParseLogFail, &format!("c{i}"), "m", 1, 1000);
        }
        assert_eq!(a.lock().open.len(), 100);
        // The configs are gone; once their windows closed, the next new
        // window leaves only itself open.
        a.raise_at(AlarmType::ParseLogFail, "new", "m", 1, 1000 + 30);
        assert_eq!(a.lock().open.len(), 1);
        // An open window stays, and keeps aggregating.
        a.raise_at(AlarmType::RegexMatch, "new", "m", 1, 1031);
        a.raise_at(AlarmType::ParseLogFail, "new", "m", 2, 1032);
        assert_eq!(a.lock().open.len(), 2);
        assert_eq!(a.recent().last().map(|x| x.count), Some(1));
        assert_eq!(a.recent()[100].count, 3);
    }

    #[test]
    fn names_round_trip_and_levels_are_1_to_3() {
        for t in AlarmType::ALL {
            assert_eq!(AlarmType::from_name(t.name()), Some(t));
            assert!((1..=3).contains(&t.level()));
            assert!(t.name().ends_with("_ALARM"));
        }
        assert_eq!(AlarmType::ReadLogDelay.code(), 10);
        assert_eq!(AlarmType::from_name("NOPE"), None);
    }
}
