//! Per-event engine cost and rule evaluation, on a store in memory (so that
//! disk syncs do not hide the CPU cost). End-to-end figures with durable
//! storage: `inboxd bench` (docs/PERFORMANCE.md).

use std::rc::Rc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use inboxd::domain::event::{Event, EventKind};
use inboxd::engine::Processor;
use inboxd::scripting::ruleset::RuleSet;
use inboxd::store::{Store, Transactions};
use inboxd_bench::bench::Workload;

/// The daemon's allocator, so that the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The shipped rules, as `inboxd init` writes them.
fn shipped_rules() -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    inboxd::tools::init::shipped_rules(dir.path()).unwrap()
}

/// The shipped config with an empty rules directory.
fn no_rules() -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_rules().config;
    RuleSet::load(config, Some(dir.path())).unwrap()
}

/// A realistic mix of events, through the whole engine and store path.
fn workload(c: &mut Criterion) {
    const BATCH: usize = 256;
    let events = Workload::new(1).take(BATCH * 8);
    let mut group = c.benchmark_group("workload");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("256 events, shipped rules", |b| {
        b.iter_batched(
            || {
                let store = Rc::new(Store::open_in_memory().unwrap());
                let mut processor = Processor::new(store.clone(), shipped_rules());
                // A store that has seen some history already.
                store.begin().unwrap();
                for event in &events[..BATCH * 7] {
                    processor.process(event, None).unwrap();
                }
                store.commit().unwrap();
                (store, processor)
            },
            |(store, mut processor)| {
                store.begin().unwrap();
                for event in &events[BATCH * 7..] {
                    processor.process(event, None).unwrap();
                }
                store.commit().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Closing a ticket with two conversations: the cost of rule P6 on top of
/// the event itself.
fn rule_evaluation(c: &mut Criterion) {
    let mut group = c.benchmark_group("close a ticket with 2 conversations");
    for (name, rules) in [
        ("shipped rules", shipped_rules as fn() -> RuleSet),
        ("no rules", no_rules),
    ] {
        let store = Rc::new(Store::open_in_memory().unwrap());
        let mut processor = Processor::new(store.clone(), rules());
        let setup = [
            r#"{"id":"s1","type":"conversation.created","conversation":"c1"}"#,
            r#"{"id":"s2","type":"conversation.created","conversation":"c2"}"#,
            r#"{"id":"s3","type":"ticket.created","ticket":"T","conversation":"c1"}"#,
            r#"{"id":"s4","type":"ticket.associated","ticket":"T","conversation":"c2"}"#,
        ];
        store.begin().unwrap();
        for line in setup {
            let event: Event = serde_json::from_str(line).unwrap();
            processor.process(&event, None).unwrap();
        }
        store.commit().unwrap();
        let close = Event {
            id: "close".into(),
            at: None,
            actor: None,
            kind: EventKind::TicketStatusChanged {
                ticket: "T".into(),
                status: "closed".into(),
            },
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                store.begin().unwrap();
                let report = processor.process(&close, None).unwrap();
                store.rollback().unwrap();
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, workload, rule_evaluation);
criterion_main!(benches);
