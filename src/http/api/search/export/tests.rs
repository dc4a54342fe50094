use super::*;

#[test]
fn a_place_left_unread_goes_to_a_caller_who_wants_one_and_only_then() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_millis(50)));
    let slots: Vec<ExportSlot> = ["a", "b", "c", "d"]
        .iter()
        .map(|c| exports.take(c).unwrap())
        .collect();
    assert!(exports.take("e").is_err(), "every place is taken");
    std::thread::sleep(Duration::from_millis(80));
    // Three keep reading; "a" stalled.
    for slot in &slots[1..] {
        assert!(slot.reading());
    }
    let e = exports.take("e").expect("the stalled place is given away");
    assert!(!slots[0].reading(), "the stalled stream ends");
    assert!(slots[1].reading(), "the others go on");
    assert!(exports.take("f").is_err(), "none of the others stalled");
    drop(slots);
    // The stalled one's end gives back nothing of another's.
    assert!(exports.take("e").is_err(), "e's place stands");
    drop(e);
    assert!(exports.take("e").is_ok());
}

/// Four clients each taking 100 bytes over 40 ms of their own time (2.5 KB a second)
/// would hold every place as long as their downloads last, reading on all the while: the
/// one below [`MIN_READ_RATE`] gives its place to a caller who wants one, the fast ones
/// keep theirs.
#[test]
fn a_place_read_slower_than_the_least_rate_goes_to_a_caller_who_wants_one() {
    let exports = Arc::new(Exports::with_limits(
        Duration::from_secs(3600),
        Duration::from_millis(30),
    ));
    let slots: Vec<ExportSlot> = ["a", "b", "c", "d"]
        .iter()
        .map(|c| exports.take(c).unwrap())
        .collect();
    for (n, slot) in slots.iter().enumerate() {
        assert!(slot.reading());
        slot.handed(if n == 0 { 100 } else { 10 << 20 });
    }
    std::thread::sleep(Duration::from_millis(40));
    for slot in &slots {
        assert!(slot.reading(), "each asks for its next chunk: none stalled");
    }
    let e = exports
        .take("e")
        .expect("the slow reader's place is given away");
    assert!(!slots[0].reading(), "the slow stream ends");
    assert!(slots[1].reading(), "the fast ones go on");
    assert!(exports.take("f").is_err(), "none of the others is slow");
    drop(e);
}

#[test]
fn a_slow_reader_keeps_its_place_while_no_one_waits() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_millis(20)));
    let slot = exports.take("slow").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    let other = exports.take("other").unwrap();
    assert!(slot.reading(), "places were free: nothing taken back");
    drop(other);
    std::thread::sleep(Duration::from_millis(40));
    let again = exports.take("slow");
    assert!(
        again.is_ok(),
        "its own stalled place, asked again, is renewed"
    );
    assert!(!slot.reading());
}

/// Pages of `each` apiece in which nothing matches, `left` of them.
struct Slow {
    each: Duration,
    left: usize,
}

impl Pages for Slow {
    async fn page(&mut self) -> anyhow::Result<Read<Page>> {
        if self.left == 0 {
            return Ok(Read::Got(None));
        }
        self.left -= 1;
        tokio::time::sleep(self.each).await;
        let last = After {
            rank: 0.0,
            created_at: chrono::Utc::now(),
            id: "p".into(),
        };
        Ok(Read::Got(Some((Vec::new(), last))))
    }
}

/// A caller in debt for the database `waits` times, `each` apiece, then an end; with
/// `meanwhile`, something done during the first wait.
struct InDebt {
    waits: usize,
    each: Duration,
    meanwhile: Option<Box<dyn FnOnce() + Send>>,
    read: usize,
}

impl InDebt {
    fn new(waits: usize, each: Duration) -> Self {
        InDebt {
            waits,
            each,
            meanwhile: None,
            read: 0,
        }
    }
}

impl Pages for InDebt {
    async fn page(&mut self) -> anyhow::Result<Read<Page>> {
        if self.waits > 0 {
            self.waits -= 1;
            if let Some(meanwhile) = self.meanwhile.take() {
                meanwhile();
            }
            return Ok(Read::Paced(self.each));
        }
        self.read += 1;
        Ok(Read::Got(None))
    }
}

/// The wait for the caller's share of the database was inside the read, after the checks
/// of the place and the caller: a page was read and sent for a place given away (or a key
/// revoked) during a wait of up to a minute.
#[actix_rt::test]
async fn a_paced_export_checks_its_place_after_the_wait_before_it_reads() {
    // Every place is unread as soon as it is taken: the caller's next export takes it.
    let exports = Arc::new(Exports::stalling_after(Duration::ZERO));
    let mut pages = InDebt::new(1, Duration::from_millis(1));
    let (again, taken) = (exports.clone(), Arc::new(Mutex::new(None)));
    let keep = taken.clone();
    pages.meanwhile = Some(Box::new(move || {
        *lock(&keep) = Some(again.take("a").expect("the place is given away"));
    }));
    let mut run = Run::new(pages, true, exports.take("a").unwrap());
    let chunk = run.next().await.expect("an end");
    assert!(lock(&taken).is_some());
    assert!(chunk.is_err(), "the export whose place went ends, cut");
    assert_eq!(run.pages.read, 0, "nothing read after the place went");
    assert!(run.next().await.is_none());
}

/// As above, for a caller whose token expires while the export waits for its share.
#[actix_rt::test]
async fn a_paced_export_checks_its_caller_after_the_wait_before_it_reads() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_secs(60)));
    let expiring = Standing {
        expires_at: Some(chrono::Utc::now() + chrono::TimeDelta::milliseconds(300)),
        ..Standing::default()
    };
    // Waits of a second in all, far past the token.
    let pages = InDebt::new(4, Duration::from_millis(250));
    let mut run = Run::new(pages, true, exports.take("a").unwrap()).for_caller(expiring);
    let chunk = run.next().await.expect("an end");
    assert!(chunk.is_err(), "the export of an expired token ends, cut");
    assert_eq!(run.pages.read, 0, "nothing read for the expired token");
}

/// A paced stream did not renew its place while it waited: at full debt (a minute at the
/// defaults) it looked stalled, and could be cut for waiting at the pace its share allows.
#[actix_rt::test]
async fn an_export_waiting_for_its_share_keeps_its_place() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_millis(300)));
    // A second of waiting in all, far past a place's 300 ms unread.
    let pages = InDebt::new(20, Duration::from_millis(50));
    let mut run = Run::new(pages, true, exports.take("a").unwrap());
    let again = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        exports.take("a").map(drop)
    };
    let (chunk, again) = futures::join!(run.next(), again);
    assert!(
        again.is_err(),
        "the export waiting for its share kept its place"
    );
    assert!(chunk.is_none(), "and read to its end");
    assert_eq!(run.pages.read, 1);
}

/// An export reading page after page in which nothing matched looked unread: after a minute
/// its place went to the same caller's next export while it read on, so one caller could
/// run any number of scans of the whole store at once, a minute apart.
#[actix_rt::test]
async fn an_export_at_work_keeps_its_place_and_one_that_lost_it_ends() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_millis(200)));
    let pages = Slow {
        each: Duration::from_millis(20),
        left: 40,
    };
    let mut run = Run::new(pages, false, exports.take("a").unwrap());
    let again = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        exports.take("a").map(drop)
    };
    let (chunk, again) = futures::join!(run.next(), again);
    assert!(again.is_err(), "the export at work kept its place");
    assert_eq!(chunk.expect("a chunk").expect("not cut"), csv_header());
    assert!(run.next().await.is_none());

    // A page longer than a place stays unread: the place goes, and the scan ends at the
    // page's end instead of reading the rest.
    let pages = Slow {
        each: Duration::from_millis(400),
        left: 3,
    };
    let mut lost = Run::new(pages, true, exports.take("b").unwrap());
    let again = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        exports.take("b")
    };
    let (chunk, again) = futures::join!(lost.next(), again);
    let _taken = again.expect("the unread place is given to the caller");
    assert!(chunk.expect("an end").is_err(), "the scan ended");
}

/// A streamed export read on, at its client's pace, after the key that started it was
/// revoked or its token expired: only WebSocket sessions were ended.
#[actix_rt::test]
async fn an_export_ends_once_its_caller_no_longer_stands() {
    let exports = Arc::new(Exports::stalling_after(Duration::from_secs(60)));
    let pages = || Slow {
        each: Duration::ZERO,
        left: 3,
    };
    let mut standing = Run::new(pages(), true, exports.take("a").unwrap());
    assert!(standing.next().await.is_none(), "read to its end");
    drop(standing);
    let expired = Standing {
        expires_at: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        ..Standing::default()
    };
    let mut ended = Run::new(pages(), true, exports.take("a").unwrap()).for_caller(expired);
    assert!(ended.next().await.expect("an end").is_err(), "cut short");
    assert!(ended.next().await.is_none());
}

fn cell(s: &str) -> String {
    let mut out = String::new();
    csv_cell(&mut out, s);
    out
}

#[test]
fn cells_are_quoted_where_needed_and_formulas_defused() {
    assert_eq!(cell("plain"), "plain");
    assert_eq!(cell("a,b"), "\"a,b\"");
    assert_eq!(cell("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
    assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(cell("-0.25"), "-0.25");
    assert_eq!(cell("@handle"), "\"'@handle\"");
    // A formula after a separator of another locale, a tab or a line break.
    assert_eq!(cell("Love it;=2+5"), "Love it;'=2+5");
    assert_eq!(cell("a\t@b;;-c"), "a\t'@b;;'-c");
    assert_eq!(cell("one\n=two"), "\"one\n'=two\"");
    assert_eq!(cell("a; b"), "a; b");
}
