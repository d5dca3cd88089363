#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What `.do` files written for apenwarr's redo expect of the out-of-date decision, end to end:
//! `redo-stamp` on a target that writes no output (`config.do` running a configure step), early
//! cutoff for a deleted dependency that is a target, and `redo-ifchange` / `redo-ifcreate`
//! with no arguments.
//!
//! Every scenario runs twice: with the daemon's file watcher vouching for what it saw (the
//! default: verdicts answer no-op checks from memory) and with `REDO_NO_WATCH=1` on every
//! request (every check reads the disk). Every edit changes the edited file's size: file times
//! come from a coarse clock, so a same-size rewrite within one tick is not a change.

use redo_tests::{Project, Run};

/// The two ways a request is checked.
const MODES: [bool; 2] = [true, false];

fn run(p: &Project, watched: bool, tool: &str, args: &[&str]) -> Run {
    let mut c = p.command(tool);
    c.args(args);
    if !watched {
        c.env("REDO_NO_WATCH", "1");
    }
    Run::from_output(c.output().unwrap())
}

fn ifchange(p: &Project, watched: bool, args: &[&str]) -> Run {
    run(p, watched, "redo-ifchange", args)
}

/// The records of a recfile: `(name, value)` fields per record (no continuation lines here).
fn records(text: &str) -> Vec<Vec<(String, String)>> {
    text.split("\n\n")
        .map(|r| {
            r.lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn field<'a>(r: &'a [(String, String)], name: &str) -> Option<&'a str> {
    r.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The record of type `ty` (and `Target: target`, when given) in target `t`'s state.
fn record(p: &Project, t: &str, ty: &str, target: Option<&str>) -> Option<Vec<(String, String)>> {
    records(&p.rec(t)).into_iter().find(|r| {
        field(r, "Type") == Some(ty) && target.is_none_or(|x| field(r, "Target") == Some(x))
    })
}

/// `config` runs a configure step that writes `config.out` (never stdout or `$3`) and stamps
/// what it produced, comments stripped; `prog` uses it. `plain` is the same without
/// `redo-stamp`, used by `plainuser`.
fn configure_project() -> Project {
    let p = Project::new();
    p.write("configure.in", "CC=cc\n# a comment\n");
    p.do_file(
        "config.do",
        "redo-ifchange configure.in\nsed -e 's/#.*//' configure.in >config.out\nredo-stamp <config.out\n",
    );
    p.do_file(
        "prog.do",
        "redo-ifchange config\necho \"prog with $(cat config.out)\"\n",
    );
    p.do_file("plain.do", "redo-ifchange configure.in\n");
    p.do_file("plainuser.do", "redo-ifchange plain\necho plainuser\n");
    p
}

#[test]
fn stamped_target_without_output_is_up_to_date_and_its_stamp_decides_for_dependants() {
    for watched in MODES {
        let p = configure_project();
        let first = ifchange(&p, watched, &["prog", "plainuser"]).ok();
        assert!(!p.exists("config"), "config writes no output");
        assert_eq!(p.read("prog"), "prog with CC=cc\n");
        assert_eq!(
            (p.runs("config.do"), p.runs("prog.do")),
            (1, 1),
            "{first:?}"
        );

        // The state: goredo's record of a target without output (an ifcreate on itself) plus
        // the stamp; the dependant's record of it carries the stamp as its Hash, no inode data.
        let stamp = record(&p, "config", "stamp", None).expect("stamp record");
        let first_stamp = field(&stamp, "Hash").unwrap().to_string();
        assert!(record(&p, "config", "ifcreate", Some("config")).is_some());
        assert!(record(&p, "config", "ifchange", Some("config")).is_none());
        let dep = record(&p, "prog", "ifchange", Some("config")).expect("prog's record of config");
        assert_eq!(
            field(&dep, "Hash"),
            Some(first_stamp.as_str()),
            "{}",
            p.rec("prog")
        );
        for f in [
            "Size",
            "InodeNum",
            "CtimeSec",
            "CtimeNsec",
            "MtimeSec",
            "MtimeNsec",
        ] {
            assert_eq!(field(&dep, f), Some("0"), "{f} in {}", p.rec("prog"));
        }

        // Nothing changed: neither runs, nothing is printed.
        for _ in 0..2 {
            let r = ifchange(&p, watched, &["prog"]).ok();
            assert_eq!(r.stderr, "", "watched={watched}");
            assert_eq!((p.runs("config.do"), p.runs("prog.do")), (1, 1));
        }
        let ood = run(&p, watched, "redo-ood", &["config", "prog"]).ok();
        assert_eq!(ood.stdout, "", "redo-ood agrees with the build");

        // configure.in changes, but only in a comment: config runs again and stamps the same;
        // prog is left alone.
        p.write("configure.in", "CC=cc\n# another, longer comment\n");
        let r = ifchange(&p, watched, &["prog"]).ok();
        assert_eq!(r.built_names(), vec!["redo . config"], "watched={watched}");
        assert_eq!((p.runs("config.do"), p.runs("prog.do")), (2, 1));
        assert_eq!(p.read("prog"), "prog with CC=cc\n");
        assert_eq!(ifchange(&p, watched, &["prog"]).ok().stderr, "");
        assert_eq!((p.runs("config.do"), p.runs("prog.do")), (2, 1));

        // A real change: new stamp, prog rebuilt.
        p.write("configure.in", "CC=clang\n# another, longer comment\n");
        let r = ifchange(&p, watched, &["prog"]).ok();
        assert_eq!(
            r.built_names(),
            vec!["redo . config", "redo prog"],
            "watched={watched}"
        );
        assert_eq!((p.runs("config.do"), p.runs("prog.do")), (3, 2));
        assert_eq!(p.read("prog"), "prog with CC=clang\n");
        let dep = record(&p, "prog", "ifchange", Some("config")).unwrap();
        let stamp = record(&p, "config", "stamp", None).unwrap();
        assert_eq!(field(&dep, "Hash"), field(&stamp, "Hash"));
        assert_ne!(field(&dep, "Hash"), Some(first_stamp.as_str()));
        assert_eq!(ifchange(&p, watched, &["prog"]).ok().stderr, "");
        assert_eq!((p.runs("config.do"), p.runs("prog.do")), (3, 2));

        // The sources behind the stamped target are prog's sources.
        let sources = run(&p, watched, "redo-sources", &["prog"]).ok();
        assert_eq!(sources.stdout, "config.do\nconfigure.in\nprog.do\n");
        let affects = run(&p, watched, "redo-affects", &["configure.in"]).ok();
        assert_eq!(affects.stdout, "config\nplain\nplainuser\nprog\n");
    }
}

#[test]
fn always_and_stamp_run_in_every_build_but_rebuild_dependants_only_on_a_new_stamp() {
    // apenwarr's idiom: check something outside redo's view in every build, stamp the answer.
    for watched in MODES {
        let p = Project::new();
        p.write("version.txt", "1.0\n");
        p.do_file("version.do", "redo-always\nredo-stamp <version.txt\n");
        p.do_file(
            "banner.do",
            "redo-ifchange version\necho \"v$(cat version.txt)\"\n",
        );
        ifchange(&p, watched, &["banner"]).ok();
        assert_eq!((p.runs("version.do"), p.runs("banner.do")), (1, 1));
        for n in 2..4 {
            let r = ifchange(&p, watched, &["banner"]).ok();
            assert_eq!(r.built_names(), vec!["redo . version"], "watched={watched}");
            assert_eq!((p.runs("version.do"), p.runs("banner.do")), (n, 1));
        }
        p.write("version.txt", "1.0.1\n");
        let r = ifchange(&p, watched, &["banner"]).ok();
        assert_eq!(r.built_names(), vec!["redo . version", "redo banner"]);
        assert_eq!((p.runs("version.do"), p.runs("banner.do")), (4, 2));
        assert_eq!(p.read("banner"), "v1.0.1\n");
    }
}

#[test]
fn target_without_output_or_stamp_still_runs_in_every_build() {
    for watched in MODES {
        let p = configure_project();
        ifchange(&p, watched, &["plainuser", "prog"]).ok();
        assert_eq!((p.runs("plain.do"), p.runs("plainuser.do")), (1, 1));
        for n in 2..4 {
            let r = ifchange(&p, watched, &["plainuser", "prog"]).ok();
            // goredo's rule: no output, no stamp = out of date, and so is what depends on it.
            assert_eq!(
                (p.runs("plain.do"), p.runs("plainuser.do")),
                (n, n),
                "watched={watched}: {r:?}"
            );
            // The stamped one next to it is left alone.
            assert_eq!((p.runs("config.do"), p.runs("prog.do")), (1, 1), "{r:?}");
        }
        let ood = run(&p, watched, "redo-ood", &[]).ok();
        assert_eq!(ood.stdout, "plain\nplainuser\n");
    }
}

#[test]
fn deleted_dependency_that_is_a_target_is_rebuilt_before_its_dependant_is_judged() {
    for watched in MODES {
        let p = Project::new();
        p.write("gen.in", "hello\n");
        p.do_file("gen.do", "redo-ifchange gen.in\ncat gen.in\n");
        p.do_file("out.do", "redo-ifchange gen\ntr a-z A-Z <gen\n");
        ifchange(&p, watched, &["out"]).ok();
        assert_eq!((p.runs("gen.do"), p.runs("out.do")), (1, 1));

        // Deleted, rebuilt to the same content: out is left alone, gen is back.
        std::fs::remove_file(p.path("gen")).unwrap();
        let ood = run(&p, watched, "redo-ood", &[]).ok();
        assert_eq!(
            ood.stdout, "gen\nout\n",
            "conservative: gen's rebuild decides"
        );
        let r = ifchange(&p, watched, &["out"]).ok();
        assert_eq!(r.built_names(), vec!["redo . gen"], "watched={watched}");
        assert_eq!((p.runs("gen.do"), p.runs("out.do")), (2, 1));
        assert_eq!(p.read("gen"), "hello\n");
        assert_eq!(p.read("out"), "HELLO\n");
        assert_eq!(ifchange(&p, watched, &["out"]).ok().stderr, "");
        assert_eq!((p.runs("gen.do"), p.runs("out.do")), (2, 1));

        // Deleted, rebuilt to other content: out is rebuilt.
        std::fs::remove_file(p.path("gen")).unwrap();
        p.write("gen.in", "hello, world\n");
        let r = ifchange(&p, watched, &["out"]).ok();
        assert_eq!(
            r.built_names(),
            vec!["redo . gen", "redo out"],
            "watched={watched}"
        );
        assert_eq!((p.runs("gen.do"), p.runs("out.do")), (3, 2));
        assert_eq!(p.read("out"), "HELLO, WORLD\n");

        // A deleted dependency that is not a target (a source) is still "does not exist".
        p.write("src", "s\n");
        p.do_file("uses.do", "redo-ifchange src\ncat src\n");
        ifchange(&p, watched, &["uses"]).ok();
        std::fs::remove_file(p.path("src")).unwrap();
        let r = run(&p, watched, "redo-ifchange", &["-d", "uses"]);
        assert!(r.stderr.contains("src does not exist"), "{r:?}");
        assert_eq!(r.code, 1, "{r:?}");
    }
}

#[test]
fn ifchange_and_ifcreate_without_arguments_do_nothing() {
    for watched in MODES {
        let p = Project::new();
        p.do_file(
            "t.do",
            "redo-ifchange\nredo-ifcreate\nredo-ifcreate $(true)\nredo-ifchange $(true)\necho t\n",
        );
        let r = ifchange(&p, watched, &["t"]).ok();
        assert_eq!(r.built_names(), vec!["redo t"], "{r:?}");
        assert!(!r.stderr.contains("usage") && !r.stderr.contains("expected"));
        assert_eq!(p.read("t"), "t\n");
        assert_eq!(p.runs("t.do"), 1);
        // Nothing was recorded for them: up to date next time.
        assert_eq!(ifchange(&p, watched, &["t"]).ok().stderr, "");
        assert_eq!(p.runs("t.do"), 1);

        // At top level: redo-ifcreate does nothing; redo-ifchange and redo build `all`
        // (goredo's default target).
        let r = run(&p, watched, "redo-ifcreate", &[]);
        assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
        p.do_file("all.do", "redo-ifchange t\necho all\n");
        let r = run(&p, watched, "redo-ifchange", &[]).ok();
        assert_eq!(r.built_names(), vec!["redo all"]);
        assert_eq!(p.runs("all.do"), 1);
        run(&p, watched, "redo", &[]).ok();
        assert_eq!(p.runs("all.do"), 2);
        assert_eq!(p.runs("t.do"), 1);
    }
}
