//! The registry: A5 operations and messages, permissions, confirmation, timeouts,
//! cancellation, panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gathering_tools::{
    CallContext, Category, ConfirmationType, Grants, Permission, Registry, ToolDefinition,
    ToolError, ToolOutput,
};
use serde_json::{Value, json};

fn counting_tool(
    counter: Arc<AtomicUsize>,
) -> impl Fn(CallContext, Value) -> std::future::Ready<Result<ToolOutput, ToolError>>
+ Send
+ Sync
+ 'static {
    move |_ctx, input| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(ToolOutput::ok("ran", input)))
    }
}

fn def(name: &str) -> ToolDefinition {
    ToolDefinition::new(name, "custom_skill", Category::Utility, "a test tool")
}

#[tokio::test]
async fn registration_errors_use_the_a5_messages() {
    let reg = Registry::new();
    let n = Arc::new(AtomicUsize::new(0));
    reg.register(def("t"), counting_tool(n.clone())).unwrap();
    let dup = reg
        .register(def("t"), counting_tool(n.clone()))
        .unwrap_err();
    assert_eq!(
        dup.to_string(),
        "Tool 't' is already registered. Use unregister() first to replace it."
    );
    let empty = reg
        .register(def(" "), counting_tool(n.clone()))
        .unwrap_err();
    assert_eq!(empty.to_string(), "Tool name cannot be empty");
    let nodesc = reg
        .register(
            ToolDefinition::new("x", "s", Category::Utility, ""),
            counting_tool(n.clone()),
        )
        .unwrap_err();
    assert_eq!(nodesc.to_string(), "Tool description cannot be empty");
    let bad_schema = reg
        .register(
            def("bad").schema(json!({"type": "not-a-type"})),
            counting_tool(n.clone()),
        )
        .unwrap_err();
    assert!(
        matches!(bad_schema, ToolError::InvalidSchema { .. }),
        "{bad_schema}"
    );
    assert!(!reg.has("bad"));
    let unknown = reg
        .call("nope", json!({}), &CallContext::new(Grants::all()))
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), "Tool 'nope' not found in registry");
}

#[tokio::test]
async fn lists_indexes_and_stats_follow_unregister() {
    let reg = Registry::new();
    let n = Arc::new(AtomicUsize::new(0));
    reg.register(
        def("a").competencies(&["rust", "review"]).plugin("p1"),
        counting_tool(n.clone()),
    )
    .unwrap();
    reg.register(
        ToolDefinition::new("b", "s", Category::Web, "web tool")
            .competencies(&["rust"])
            .plugin("p1"),
        counting_tool(n.clone()),
    )
    .unwrap();
    reg.register(
        ToolDefinition::new("c", "s", Category::Web, "web tool"),
        counting_tool(n.clone()),
    )
    .unwrap();
    let names = |v: Vec<Arc<ToolDefinition>>| v.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(reg.list_all()), ["a", "b", "c"]);
    assert_eq!(names(reg.list_by_category(Category::Web)), ["b", "c"]);
    assert_eq!(names(reg.list_by_competency("rust")), ["a", "b"]);
    assert_eq!(names(reg.list_by_plugin("p1")), ["a", "b"]);
    assert_eq!(reg.get_categories(), vec![Category::Web, Category::Utility]);
    let stats = reg.get_stats();
    assert_eq!(
        (
            stats.total_tools,
            stats.categories,
            stats.competencies,
            stats.plugins
        ),
        (3, 2, 2, 1)
    );
    assert_eq!(stats.tools_by_category["web"], 2);

    assert!(reg.unregister("a"));
    assert!(!reg.unregister("a"));
    assert_eq!(
        reg.get_competencies(),
        vec!["rust".to_owned()],
        "'review' had only 'a'"
    );
    assert_eq!(
        reg.get_categories(),
        vec![Category::Web],
        "utility is empty now"
    );
    assert_eq!(reg.unregister_plugin("p1"), 1);
    assert_eq!(reg.get_stats().plugins, 0);
    reg.clear();
    assert_eq!(reg.get_stats().total_tools, 0);
}

#[tokio::test]
async fn missing_permission_refuses_and_does_not_run() {
    let reg = Registry::new();
    let n = Arc::new(AtomicUsize::new(0));
    reg.register(
        def("w").permissions(&[Permission::Read, Permission::Write]),
        counting_tool(n.clone()),
    )
    .unwrap();
    let ctx = CallContext::new(Grants::of(&[Permission::Read]));
    let err = reg.call("w", json!({}), &ctx).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Tool 'w' needs permission(s) write (granted: read)"
    );
    assert_eq!(n.load(Ordering::SeqCst), 0);
    let resp = reg.execute("w", json!({}), &ctx).await;
    assert!(!resp.success);
    assert_eq!(resp.error.as_deref(), Some("permission_denied"));
    assert_eq!(resp.data["missing"], json!(["write"]));
    assert_eq!(n.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dangerous_tool_needs_confirmation_until_confirmed() {
    let reg = Registry::new();
    let n = Arc::new(AtomicUsize::new(0));
    reg.register(
        def("danger").dangerous(ConfirmationType::Destructive),
        counting_tool(n.clone()),
    )
    .unwrap();
    let unconfirmed = CallContext::new(Grants::all());
    let resp = reg.execute("danger", json!({}), &unconfirmed).await;
    assert!(!resp.success && resp.needs_confirmation);
    assert_eq!(resp.confirmation_type, Some(ConfirmationType::Destructive));
    assert_eq!(resp.error, None);
    assert_eq!(
        (resp.tool_name.as_str(), resp.skill_name.as_str()),
        ("danger", "custom_skill")
    );
    assert_eq!(n.load(Ordering::SeqCst), 0, "not run before confirmation");
    let resp = reg
        .execute("danger", json!({"x": 1}), &unconfirmed.confirmed(true))
        .await;
    assert!(resp.success, "{resp:?}");
    assert_eq!(resp.data, json!({"x": 1}));
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

/// Sets its flag when dropped: proves the tool's future was dropped (cancelled).
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn sleeper(
    dropped: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
) -> impl Fn(
    CallContext,
    Value,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ToolOutput, ToolError>> + Send>,
> + Send
+ Sync
+ 'static {
    move |_ctx, _input| {
        let (dropped, finished) = (dropped.clone(), finished.clone());
        Box::pin(async move {
            let _guard = DropFlag(dropped);
            tokio::time::sleep(Duration::from_secs(5)).await;
            finished.store(true, Ordering::SeqCst);
            Ok(ToolOutput::ok("finished", Value::Null))
        })
    }
}

#[tokio::test]
async fn a_tool_over_its_timeout_is_cancelled() {
    let reg = Registry::new();
    let (dropped, finished) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    reg.register(
        def("slow").timeout(Duration::from_millis(100)),
        sleeper(dropped.clone(), finished.clone()),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let resp = reg
        .execute("slow", json!({}), &CallContext::new(Grants::NONE))
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(resp.error.as_deref(), Some("timeout"));
    assert_eq!(
        resp.message,
        "Tool 'slow' timed out after 100 ms and was cancelled"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the tool's future was dropped"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!finished.load(Ordering::SeqCst), "the tool never finished");

    // A caller's tighter timeout wins over the tool's.
    let (d2, f2) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    reg.register(def("slow2"), sleeper(d2.clone(), f2)).unwrap();
    let err = reg
        .call(
            "slow2",
            json!({}),
            &CallContext::new(Grants::NONE).with_timeout(Some(Duration::from_millis(50))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { ms: 50, .. }), "{err}");
    assert!(d2.load(Ordering::SeqCst));
}

#[tokio::test]
async fn the_callers_cancellation_stops_a_tool() {
    let reg = Arc::new(Registry::new());
    let (dropped, finished) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    reg.register(def("slow"), sleeper(dropped.clone(), finished.clone()))
        .unwrap();
    let ctx = CallContext::new(Grants::NONE);
    let cancel = ctx.cancel.clone();
    let r = reg.clone();
    let call = tokio::spawn(async move { r.call("slow", json!({}), &ctx).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "Tool 'slow' was cancelled");
    assert!(dropped.load(Ordering::SeqCst));
    assert!(!finished.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_panicking_tool_is_an_error_not_a_crash() {
    let reg = Registry::new();
    reg.register(def("boom"), |_c: CallContext, _i: Value| async move {
        if true {
            panic!("kaboom");
        }
        Ok(ToolOutput::ok("", Value::Null))
    })
    .unwrap();
    let resp = reg
        .execute("boom", json!({}), &CallContext::new(Grants::NONE))
        .await;
    assert_eq!(resp.error.as_deref(), Some("internal_error"));
    assert_eq!(resp.message, "Error executing tool 'boom': kaboom");
}

#[tokio::test]
async fn builtin_registry_lists_every_core_skill() {
    let tb = crate::helpers::toolbox("");
    let per_skill = tb.registry().tools_per_skill();
    for (skill, n) in [
        ("filesystem", 10),
        ("git", 10),
        ("calendar", 4),
        ("email", 4),
        ("cloud", 4),
        ("shell", 1),
        ("code", 4),
        ("http", 8),
        ("notifications", 5),
        ("web", 1),
        ("scraper", 3),
    ] {
        assert_eq!(per_skill.get(skill), Some(&n), "{skill}: {per_skill:?}");
    }
    // Without a database, GatheRing's own skills are not registered.
    assert!(!tb.registry().has("goal_create"));
    for d in tb.registry().list_all() {
        assert!(!d.description.is_empty());
        assert!(d.input_schema.is_object(), "{}", d.name);
        assert!(d.to_json()["input_schema"].is_object());
    }
}
