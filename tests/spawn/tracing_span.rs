//! A tracing span per sandbox, carrying the init's pid, with events for its creation, the
//! setup hook, the exec and the end (status, timeout, CPU), so an orchestrator's logs show
//! where time went and how each sandbox ended.
//!
//! A small recording subscriber is installed as this binary's global default (once): a scoped
//! one (`with_default`) would race with callsites that other tests' threads register, which
//! can recompute the global level filter without it. Each test finds its own sandbox's span
//! by the init's pid, or by its program.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use nsbox::{Namespaces, Sandbox, SetupContext, SetupHook};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Recorded fields: (name, value).
type FieldList = Vec<(String, String)>;

#[derive(Default, Debug)]
struct Seen {
    /// (id, name, fields)
    spans: Vec<(u64, String, FieldList)>,
    /// (span id, message, fields)
    events: Vec<(Option<u64>, String, FieldList)>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut seen = self.0.lock().unwrap();
        let id = seen.spans.len() as u64 + 1;
        let mut f = Fields(Vec::new());
        attrs.record(&mut f);
        seen.spans
            .push((id, attrs.metadata().name().to_string(), f.0));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut f = Fields(Vec::new());
        values.record(&mut f);
        let mut seen = self.0.lock().unwrap();
        if let Some(s) = seen.spans.iter_mut().find(|s| s.0 == span.into_u64()) {
            s.2.extend(f.0);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields(Vec::new());
        event.record(&mut f);
        let parent = event
            .parent()
            .map(Id::into_u64)
            .or_else(|| STACK.with(|s| s.borrow().last().copied()));
        let mut seen = self.0.lock().unwrap();
        let msg =
            f.0.iter()
                .find(|(k, _)| k == "message")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
        seen.events.push((parent, msg, f.0));
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
}

impl Seen {
    /// The ids of the spans named "sandbox" whose pid field is `pid`.
    fn sandbox_span(&self, pid: u32) -> Option<u64> {
        self.spans
            .iter()
            .find(|(_, name, f)| {
                name == "sandbox" && f.iter().any(|(k, v)| k == "pid" && *v == pid.to_string())
            })
            .map(|s| s.0)
    }
    fn messages_in(&self, span: u64) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.0 == Some(span))
            .map(|e| e.1.as_str())
            .collect()
    }
    fn field_of(&self, span: u64, message: &str, field: &str) -> Option<String> {
        self.events
            .iter()
            .find(|e| e.0 == Some(span) && e.1 == message)
            .and_then(|e| e.2.iter().find(|(k, _)| k == field).map(|(_, v)| v.clone()))
    }
}

/// Run `f` with the recorder installed (the global default, set once for this binary).
fn with_recorder<T>(f: impl FnOnce() -> T) -> (T, Recorder) {
    static GLOBAL: std::sync::OnceLock<Recorder> = std::sync::OnceLock::new();
    let rec = GLOBAL
        .get_or_init(|| {
            let rec = Recorder::default();
            tracing::subscriber::set_global_default(rec.clone())
                .expect("no other global subscriber in this binary");
            rec
        })
        .clone();
    (f(), rec)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

struct Nothing;

#[async_trait::async_trait]
impl SetupHook for Nothing {
    async fn setup(&self, _: &SetupContext<'_>) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sandbox_has_a_span_with_its_pid_and_events_from_creation_to_its_end() {
    let ((pid, status), rec) = with_recorder(|| {
        runtime().block_on(async {
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", "exit 3"])
                .namespaces(Namespaces::all())
                .use_launcher(false)
                .setup_hook(Arc::new(Nothing));
            let mut child = sb.spawn().await.expect("spawn");
            let pid = child.id().expect("the init runs");
            (pid, child.wait().await.expect("wait"))
        })
    });
    assert_eq!(status.code(), Some(3));
    let seen = rec.0.lock().unwrap();
    let span = seen
        .sandbox_span(pid)
        .unwrap_or_else(|| panic!("no sandbox span with pid {pid}: {seen:#?}"));
    let msgs = seen.messages_in(span);
    for want in [
        "sandbox init created by a direct clone",
        "setup hook done",
        "sandbox command executed",
        "sandbox ended",
    ] {
        assert!(
            msgs.contains(&want),
            "no {want:?} in the span: {msgs:?}\n{seen:#?}"
        );
    }
    let st = seen
        .field_of(span, "sandbox ended", "status")
        .unwrap_or_default();
    assert!(st.contains('3'), "the end event's status is {st:?}");
    assert_eq!(
        seen.field_of(span, "sandbox ended", "timed_out").as_deref(),
        Some("false")
    );
}

#[test]
fn a_failed_spawn_says_why_in_its_span() {
    let (err, rec) = with_recorder(|| {
        runtime().block_on(async {
            let mut sb = Sandbox::new("/no/such/program");
            sb.namespaces(Namespaces::all()).use_launcher(false);
            sb.spawn().await.expect_err("spawned a missing program")
        })
    });
    let seen = rec.0.lock().unwrap();
    let failed = seen
        .events
        .iter()
        .find(|e| {
            e.1 == "sandbox setup failed"
                && e.2
                    .iter()
                    .any(|(k, v)| k == "error" && *v == err.to_string())
        })
        .unwrap_or_else(|| panic!("no setup-failed event for {err}: {seen:#?}"));
    let span = failed.0.expect("the event is in a span");
    assert!(
        seen.spans.iter().any(|s| s.0 == span && s.1 == "sandbox"),
        "the event is not in the sandbox's span"
    );
    let text = failed
        .2
        .iter()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.clone());
    assert_eq!(text, Some(err.to_string()));
}
