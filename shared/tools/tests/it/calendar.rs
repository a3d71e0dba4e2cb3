//! The calendar skill on real .ics files of a temporary project: create, list with recurrences
//! expanded in a range, update, delete, and a file written by another program.

use serde_json::{Value, json};

use crate::helpers::{TempDir, ctx, toolbox};

async fn cal(dir: &TempDir, tool: &str, input: Value) -> gathering_tools::SkillResponse {
    toolbox("").execute(tool, input, &ctx(Some(dir))).await
}

fn starts(r: &gathering_tools::SkillResponse) -> Vec<(String, String)> {
    r.data["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["summary"].as_str().unwrap().to_owned(),
                o["start"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn create_list_update_delete_with_recurrence() {
    let dir = TempDir::new();
    let path = "cal/team.ics";
    let r = cal(
        &dir,
        "calendar_create_event",
        json!({"path": path, "summary": "Standup", "start": "2027-01-04T09:00:00Z",
               "end": "2027-01-04T09:15:00Z", "rrule": "FREQ=WEEKLY;COUNT=5", "location": "Room 1"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let standup = r.data["uid"].as_str().unwrap().to_owned();
    let r = cal(
        &dir,
        "calendar_create_event",
        json!({"path": path, "summary": "Review", "start": "2027-01-06T14:00:00+01:00"}),
    )
    .await;
    let review = r.data["uid"].as_str().unwrap().to_owned();
    let r = cal(
        &dir,
        "calendar_create_event",
        json!({"path": path, "summary": "Holiday", "start": "2027-01-08", "all_day": true}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let text = std::fs::read_to_string(dir.path().join(path)).unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR"), "{text}");
    assert!(text.contains("RRULE:FREQ=WEEKLY;COUNT=5"), "{text}");

    let list = |from: &str, to: &str| json!({"path": path, "from": from, "to": to});
    let r = cal(
        &dir,
        "calendar_list_events",
        list("2027-01-01", "2027-02-28"),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["events"].as_array().unwrap().len(), 3);
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        starts(&r),
        vec![
            s("Standup", "2027-01-04T09:00:00+00:00"),
            s("Review", "2027-01-06T13:00:00+00:00"),
            s("Holiday", "2027-01-08"),
            s("Standup", "2027-01-11T09:00:00+00:00"),
            s("Standup", "2027-01-18T09:00:00+00:00"),
            s("Standup", "2027-01-25T09:00:00+00:00"),
            s("Standup", "2027-02-01T09:00:00+00:00"),
        ]
    );
    assert_eq!(r.data["occurrences"][1]["end"], "2027-01-06T14:00:00+00:00");
    assert_eq!(r.data["truncated"], false);
    let r = cal(
        &dir,
        "calendar_list_events",
        list("2027-01-10", "2027-01-20"),
    )
    .await;
    assert_eq!(starts(&r).len(), 2, "{r:?}");
    let r = cal(
        &dir,
        "calendar_list_events",
        json!({"path": path, "from": "2027-01-01", "to": "2027-02-28", "limit": 2}),
    )
    .await;
    assert_eq!((starts(&r).len(), &r.data["truncated"]), (2, &json!(true)));

    // Move the standup and make it daily: the 15 minutes are kept.
    let r = cal(
        &dir,
        "calendar_update_event",
        json!({"path": path, "uid": standup, "start": "2027-01-05T10:00:00Z", "rrule": "FREQ=DAILY;COUNT=3"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["sequence"], 1);
    let r = cal(
        &dir,
        "calendar_list_events",
        list("2027-01-01", "2027-02-28"),
    )
    .await;
    let standups: Vec<Value> = r.data["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["uid"] == standup)
        .map(|o| json!([o["start"], o["end"]]))
        .collect();
    assert_eq!(
        standups,
        vec![
            json!(["2027-01-05T10:00:00+00:00", "2027-01-05T10:15:00+00:00"]),
            json!(["2027-01-06T10:00:00+00:00", "2027-01-06T10:15:00+00:00"]),
            json!(["2027-01-07T10:00:00+00:00", "2027-01-07T10:15:00+00:00"]),
        ]
    );
    let ev = r.data["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"] == standup)
        .unwrap()
        .clone();
    assert_eq!(
        (&ev["location"], &ev["rrule"]),
        (&json!("Room 1"), &json!("FREQ=DAILY;COUNT=3"))
    );
    // An empty rule stops the recurrence.
    let r = cal(
        &dir,
        "calendar_update_event",
        json!({"path": path, "uid": standup, "rrule": ""}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = cal(
        &dir,
        "calendar_list_events",
        list("2027-01-01", "2027-02-28"),
    )
    .await;
    assert_eq!(starts(&r).iter().filter(|(s, _)| s == "Standup").count(), 1);

    // Bad input is refused and leaves the file as it was.
    let before = std::fs::read_to_string(dir.path().join(path)).unwrap();
    for (input, code) in [
        (
            json!({"path": path, "uid": standup, "rrule": "FREQ=SOMETIMES"}),
            "invalid_input",
        ),
        (
            json!({"path": path, "uid": standup, "end": "2027-01-01T00:00:00Z"}),
            "invalid_input",
        ),
        (json!({"path": path, "uid": "nope"}), "not_found"),
        (json!({"path": "../x.ics", "uid": standup}), "refused"),
        (
            json!({"path": "notes.txt", "uid": standup}),
            "validation_error",
        ),
    ] {
        let r = cal(&dir, "calendar_update_event", input.clone()).await;
        assert_eq!(r.error.as_deref(), Some(code), "{input}: {r:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join(path)).unwrap(),
        before
    );

    // Delete waits for confirmation.
    let unconfirmed = toolbox("")
        .execute(
            "calendar_delete_event",
            json!({"path": path, "uid": review}),
            &ctx(Some(&dir)).confirmed(false),
        )
        .await;
    assert!(unconfirmed.needs_confirmation, "{unconfirmed:?}");
    let r = cal(
        &dir,
        "calendar_delete_event",
        json!({"path": path, "uid": review}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let r = cal(
        &dir,
        "calendar_delete_event",
        json!({"path": path, "uid": review}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let r = cal(
        &dir,
        "calendar_list_events",
        list("2027-01-01", "2027-02-28"),
    )
    .await;
    assert_eq!(r.data["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn endless_rules_are_bounded_and_foreign_files_survive() {
    let dir = TempDir::new();
    dir.write(
        "other.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\nBEGIN:VEVENT\r\nUID:daily-1\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:20270101T080000Z\r\nDTEND:20270101T083000Z\r\n\
         RRULE:FREQ=DAILY\r\nEXDATE:20270102T080000Z\r\nSUMMARY:Run\r\nX-OTHER-APP:keep me\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
    );
    let r = cal(
        &dir,
        "calendar_list_events",
        json!({"path": "other.ics", "from": "2027-01-01", "to": "2027-01-05"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let days: Vec<String> = starts(&r).into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        days,
        [
            "2027-01-01T08:00:00+00:00",
            "2027-01-03T08:00:00+00:00",
            "2027-01-04T08:00:00+00:00"
        ]
    );
    // An endless rule over ten years stops at the limit.
    let r = cal(
        &dir,
        "calendar_list_events",
        json!({"path": "other.ics", "from": "2027-01-01", "to": "2036-12-01", "limit": 1000}),
    )
    .await;
    assert_eq!(
        (starts(&r).len(), &r.data["truncated"]),
        (1000, &json!(true))
    );
    let r = cal(
        &dir,
        "calendar_list_events",
        json!({"path": "other.ics", "from": "2027-01-01", "to": "2040-01-01"}),
    )
    .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");

    let r = cal(
        &dir,
        "calendar_update_event",
        json!({"path": "other.ics", "uid": "daily-1", "summary": "Morning run"}),
    )
    .await;
    assert!(r.success, "{r:?}");
    let text = std::fs::read_to_string(dir.path().join("other.ics")).unwrap();
    for kept in [
        "X-OTHER-APP:keep me",
        "EXDATE:20270102T080000Z",
        "SUMMARY:Morning run",
        "RRULE:FREQ=DAILY",
    ] {
        assert!(text.contains(kept), "{kept}: {text}");
    }
    // Not a calendar: a clear error.
    dir.write("broken.ics", "hello");
    let r = cal(&dir, "calendar_list_events", json!({"path": "broken.ics"})).await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
}
