use super::*;

/// The `pulse.toml` embedded in the Kubernetes ConfigMap.
fn deployed_toml() -> String {
    let manifest = include_str!("../../../../deploy/configmap.yaml");
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "pulse.toml: |");
    lines.next().expect("the ConfigMap holds pulse.toml");
    lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.get(4..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `test` in a jail whose `pulse.toml` holds `toml`.
fn with_pulse_toml(toml: &str, test: impl FnOnce(&mut figment::Jail) -> figment::Result<()>) {
    figment::Jail::expect_with(|jail| {
        jail.create_file("pulse.toml", toml)?;
        test(jail)
    });
}

/// The settings the jail's `pulse.toml` and environment give.
fn in_jail() -> figment::Result<Settings> {
    Settings::figment("pulse.toml".into()).extract()
}

/// Every key of `have` is a key of `known`, recursively; returns the unknown ones.
fn unknown_keys(
    have: &figment::value::Dict,
    known: &figment::value::Dict,
    at: &str,
) -> Vec<String> {
    use figment::value::Value;
    let mut out = Vec::new();
    for (key, value) in have {
        let path = format!("{at}{key}");
        match (value, known.get(key)) {
            (_, None) => out.push(path),
            (Value::Dict(_, inner), Some(Value::Dict(_, known_inner))) => {
                out.extend(unknown_keys(inner, known_inner, &format!("{path}.")))
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_kubernetes_config_map_holds_valid_known_settings() {
    let toml = deployed_toml();
    let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(&toml))
        .extract()
        .expect("the deployed pulse.toml is valid");
    assert!(s.fanout.enabled && s.virality.enabled);
    assert_eq!(s.http.listen, "0.0.0.0:8080");
    let have: figment::value::Dict = Figment::from(Toml::string(&toml)).extract().unwrap();
    let known: figment::value::Dict = Figment::from(Serialized::defaults(Settings::default()))
        .extract()
        .unwrap();
    assert_eq!(unknown_keys(&have, &known, ""), Vec::<String>::new());
    // The pod's grace period covers the drain, the flush, the WebSockets' close, the HTTP
    // server's stop and the preStop pause.
    let deployment = include_str!("../../../../deploy/deployment.yaml");
    let grace: u64 = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .expect("a grace period")
        .trim()
        .parse()
        .unwrap();
    assert!(grace >= s.shutdown_timeout_secs + 2 + 2 + 5 + 5, "{grace}");
}

#[test]
fn sources_come_from_the_file_or_the_environment() {
    with_pulse_toml(
        "[[sources]]\nkind = \"jetstream\"\nkeywords = [\"buds\"]\nchannel = \"social\"\n",
        |jail| {
            let s = in_jail()?;
            assert_eq!(s.sources.len(), 1);
            assert_eq!(s.sources[0].name(), "jetstream");
            assert_eq!(s.sources[0].channel.as_deref(), Some("social"));
            let SourceKind::Jetstream(j) = &s.sources[0].kind else {
                panic!("not jetstream")
            };
            assert_eq!(j.keywords, ["buds"]);
            assert_eq!(
                j.endpoints.len(),
                PUBLIC_JETSTREAMS.len(),
                "defaults fill the rest"
            );

            jail.set_env(
                "PULSE_SOURCES",
                r#"[{kind="jetstream", name="bsky-de", languages=["de"]}]"#,
            );
            let s = in_jail()?;
            assert_eq!(s.sources[0].name(), "bsky-de");
            let SourceKind::Jetstream(j) = &s.sources[0].kind else {
                panic!("not jetstream")
            };
            assert_eq!(j.languages, ["de"]);
            assert!(j.keywords.is_empty());
            Ok(())
        },
    );
}

#[test]
fn a_former_name_is_read_unless_the_new_one_is_given() {
    with_pulse_toml("[ingest]\nblock_ms = 35\n", |jail| {
        let s = in_jail()?;
        assert_eq!(s.ingest.idle_poll_ms, 35);
        jail.set_env("PULSE_INGEST__BLOCK_MS", "45");
        let s = in_jail()?;
        assert_eq!(s.ingest.idle_poll_ms, 45);
        jail.set_env("PULSE_INGEST__IDLE_POLL_MS", "55");
        let s = in_jail()?;
        assert_eq!(s.ingest.idle_poll_ms, 55, "the new name wins");
        Ok(())
    });
}

#[test]
fn layers_file_then_environment() {
    with_pulse_toml(
        "[redis]\nstream = \"from-file\"\ngroup = \"g\"\n[ingest]\nread_batch = 7\n",
        |jail| {
            jail.set_env("PULSE_STREAM", "from-env");
            jail.set_env("PULSE_INGEST__MAX_IN_FLIGHT", "99");
            jail.set_env("DATABASE_URL", "postgres://x@y/z");
            jail.set_env("PULSE_LISTEN", "127.0.0.1:0");
            jail.set_env("PULSE_WS__QUEUE_CAPACITY", "16");
            let s = in_jail()?;
            assert_eq!(s.redis.stream, "from-env");
            assert_eq!(s.redis.group, "g");
            assert_eq!(s.ingest.read_batch, 7);
            assert_eq!(s.ingest.max_in_flight, 99);
            assert_eq!(s.database.url, "postgres://x@y/z");
            assert_eq!(s.http.listen, "127.0.0.1:0");
            assert_eq!(s.ws.queue_capacity, 16);
            assert_eq!(s.ws.max_sessions, DEFAULT_MAX_SESSIONS);
            Ok(())
        },
    );
}

#[test]
fn an_empty_secret_in_the_environment_leaves_the_files_in_place() {
    with_pulse_toml(
        "[auth]\njwt_secret = \"from-the-file-b81e4f27ac093d5e6f1a2c48d79e0b3a\"\n",
        |jail| {
            jail.set_env("PULSE_AUTH__JWT_SECRET", "");
            let s = in_jail()?;
            assert_eq!(
                s.auth.jwt_secret.expose(),
                "from-the-file-b81e4f27ac093d5e6f1a2c48d79e0b3a"
            );
            jail.set_env("PULSE_AUTH__JWT_SECRET", "from-the-environment");
            let s = in_jail()?;
            assert_eq!(s.auth.jwt_secret.expose(), "from-the-environment");
            Ok(())
        },
    );
}

#[test]
fn entry_fields_past_what_a_dead_letter_can_carry_are_refused() {
    assert!(IngestSettings::default().validate().is_ok());
    let fields = |max_entry_fields| IngestSettings {
        max_entry_fields,
        ..Default::default()
    };
    // The number docs/configuration.md gives.
    assert_eq!(MAX_ENTRY_FIELDS_CEILING, 1_900);
    assert!(fields(1_900).validate().is_ok());
    let refused = fields(1_901).validate().unwrap_err();
    assert!(refused.contains("ingest.max_entry_fields"), "{refused}");
}

#[test]
fn rates_and_shares_must_be_positive_numbers() {
    assert!(Settings::default().check_rates().is_ok());
    let mut zero = Settings::default();
    zero.limits.per_ip_per_sec = 0.0;
    let refused = zero.check_rates().unwrap_err().to_string();
    assert!(refused.contains("limits.per_ip_per_sec"), "{refused}");
    let mut nan = Settings::default();
    nan.database.api_busy_share = f64::NAN;
    assert!(nan.check_rates().is_err());
    let mut negative = Settings::default();
    negative.limits.per_caller_db_share = -1.0;
    assert!(negative.check_rates().is_err());
}
