#[test]
fn a_comparison_shows_each_fraction_before_and_after_and_its_change() {
    let saved =
        serde_json::json!({"insert_fraction_of_copy": 0.5, "fraction_of_slowest_ceiling": 0.8});
    let now = serde_json::json!({"insert_fraction_of_copy": 0.25,
            "end_to_end_fraction_of_copy": 0.3, "fraction_of_slowest_ceiling": 0.8});
    let table = super::compare(&saved, &now, std::path::Path::new("old.json"));
    assert!(
        table.contains("| Pulse's batch write / `COPY` | 50% | 25% | -50% |"),
        "{table}"
    );
    assert!(
        table.contains("| Pulse end to end / `COPY` | n/a | 30% | n/a |"),
        "{table}"
    );
    assert!(
        table.contains("| Pulse end to end / slowest ceiling | 80% | 80% | +0% |"),
        "{table}"
    );
}

#[test]
fn replaces_the_database_of_a_url() {
    assert_eq!(
        super::replace_database("postgres://u@h:5432/pulse?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(
        super::replace_database("postgres://u@h", "x"),
        "postgres://u@h/x"
    );
}
