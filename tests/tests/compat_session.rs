#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Within one build, what is up to date, what runs again and in which order: goredo's session
//! rule (only what was built in this build is taken as up to date without a check), forced
//! `redo` inside a build, argument order, `--keep-going` and `--shuffle`.
//!
//! Each case is run with the file watcher (the default) and without it (`REDO_NO_WATCH=1`):
//! the daemon answers from memory in the first, from the disk in the second, and both must
//! give goredo's answer.

use redo_tests::Project;

/// Runs `case` once with the watcher and once without.
fn both(case: impl Fn(&[(&str, &str)])) {
    case(&[]);
    case(&[("REDO_NO_WATCH", "1")]);
}

fn run(p: &Project, env: &[(&str, &str)], tool: &str, args: &[&str]) -> redo_tests::Run {
    let mut c = p.command(tool);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    redo_tests::Run::from_output(c.output().unwrap())
}

/// The lines of a file the `.do` files append to.
fn lines(p: &Project, rel: &str) -> Vec<String> {
    p.read(rel).lines().map(str::to_string).collect()
}

#[test]
fn a_source_changed_during_the_build_is_seen_by_the_next_request() {
    both(|env| {
        let p = Project::new();
        p.write("src", "one\n");
        p.do_file("t.do", "redo-ifchange src; cat src\n");
        run(&p, env, "redo-ifchange", &["t"]).ok();
        p.do_file(
            "all.do",
            "redo-ifchange t\necho two-two >src\nredo-ifchange t\ncat t >seen\n",
        );
        run(&p, env, "redo", &["all"]).ok();
        assert_eq!(p.read("seen"), "two-two\n", "env {env:?}");
        assert_eq!(
            p.runs("t.do"),
            2,
            "t built once before, once after the change"
        );
    });
}

#[test]
fn a_target_removed_during_the_build_is_built_again() {
    both(|env| {
        let p = Project::new();
        std::fs::create_dir(p.path("out")).unwrap();
        p.do_file("default.o.do", "echo hi\n");
        p.do_file(
            "all.do",
            "redo-ifchange out/x.o\nrm -rf out\nredo-ifchange out/x.o\ntest -e out/x.o\n",
        );
        run(&p, env, "redo", &["all"]).ok();
        assert_eq!(p.read("out/x.o"), "hi\n");
        assert_eq!(p.runs("default.o.do"), 2, "env {env:?}");
        // Built in this build and still standing: asked again, it is not rebuilt.
        p.clear_runs();
        p.do_file(
            "all.do",
            "redo-ifchange out/x.o\nredo-ifchange out/x.o out/x.o\n",
        );
        run(&p, env, "redo", &["all"]).ok();
        assert_eq!(p.runs("default.o.do"), 0, "up to date: never rebuilt");
    });
}

#[test]
fn built_in_this_build_is_up_to_date_for_the_rest_of_it() {
    both(|env| {
        let p = Project::new();
        p.do_file("a.do", "redo-always\necho a\n");
        for j in ["j1", "j2", "j3"] {
            p.do_file(&format!("{j}.do"), "redo-ifchange a\necho ok\n");
        }
        p.do_file("all.do", "redo-ifchange j1 j2 j3\n");
        run(&p, env, "redo", &["all"]).ok();
        assert_eq!(p.runs("a.do"), 1, "redo-always: once per build ({env:?})");
        run(&p, env, "redo", &["all"]).ok();
        assert_eq!(p.runs("a.do"), 2, "and again in the next build");
    });
}

#[test]
fn forced_redo_runs_the_target_each_time_it_is_asked() {
    for jobs in ["1", "3"] {
        let p = Project::new();
        p.do_file("c.do", "sleep 0.1\necho c\n");
        for j in ["j1", "j2", "j3"] {
            p.do_file(&format!("{j}.do"), "redo c\necho ok\n");
        }
        p.do_file("all.do", "redo-ifchange j1 j2 j3\n");
        run(&p, &[], "redo", &["-j", jobs, "all"]).ok();
        assert_eq!(p.runs("c.do"), 3, "three `redo c`, three runs at -j{jobs}");
        // redo-ifchange keeps sharing: three requests in one build, one run.
        p.clear_runs();
        for j in ["j1", "j2", "j3"] {
            p.do_file(&format!("{j}.do"), "redo-ifchange c\necho ok\n");
        }
        p.do_file("c.do", "redo-always\nsleep 0.1\necho c\n");
        run(&p, &[], "redo", &["-j", jobs, "all"]).ok();
        assert_eq!(p.runs("c.do"), 1, "shared build at -j{jobs}");
    }
}

#[test]
fn forced_redo_of_the_running_target_is_a_cycle() {
    let p = Project::new();
    p.do_file("c.do", "redo c\necho c\n");
    let r = run(&p, &[], "redo", &["c"]).fails();
    assert!(
        r.stderr.contains("dependency cycle: c -> c"),
        "{}",
        r.stderr
    );
}

#[test]
fn targets_are_built_in_argument_order_at_one_job() {
    both(|env| {
        let p = Project::new();
        let names: Vec<String> = (1..=12).map(|i| format!("t{i}")).collect();
        p.write(
            "default.do",
            "echo \"$1\" >>order\nsleep 0.01\necho \"$1\" >>order\n",
        );
        let args: Vec<&str> = names.iter().map(String::as_str).collect();
        run(&p, env, "redo-ifchange", &args).ok();
        let want: Vec<String> = names.iter().flat_map(|n| [n.clone(), n.clone()]).collect();
        assert_eq!(
            lines(&p, "order"),
            want,
            "one after another, as given ({env:?})"
        );
    });
}

#[test]
fn a_later_target_sees_what_an_earlier_one_generated() {
    // `redo-ifchange diskscan tags`: tags lists files diskscan generates, nested, without
    // declaring it (as real projects do).
    let p = Project::new();
    p.write("diskscan.do", "redo-ifchange gen1.c gen2.c\necho scanned\n");
    p.write("default.c.do", "sleep 0.05\necho \"int $2;\"\n");
    p.write("tags.do", "ls *.c >&1\n");
    run(&p, &[], "redo-ifchange", &["diskscan", "tags"]).ok();
    assert_eq!(p.read("tags"), "gen1.c\ngen2.c\n");
}

#[test]
fn jobs_start_in_argument_order_with_several_jobs() {
    let p = Project::new();
    p.write("default.do", "sleep 0.1\n");
    let names: Vec<String> = (1..=8).map(|i| format!("t{i}")).collect();
    let args: Vec<&str> = ["-j", "3", "-k"]
        .into_iter()
        .chain(names.iter().map(String::as_str))
        .collect();
    run(&p, &[], "redo-ifchange", &args).ok();
    // When the daemon started each `.do` (TAI64N: hex, so ordered as text).
    let started: Vec<String> = names
        .iter()
        .map(|n| {
            let rec = p.read(&format!(".redo/{n}.log-rec"));
            let line = rec.lines().find(|l| l.starts_with("Started: ")).unwrap();
            line.to_string()
        })
        .collect();
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted, "started in argument order");
}

#[test]
fn keep_going_builds_everything_that_can_be_built() {
    both(|env| {
        let p = Project::new();
        p.do_file("a.do", "echo a\n");
        p.do_file("b.do", "echo b-broke >&2\nexit 3\n");
        p.do_file("c.do", "echo c\n");
        // Without it, `redo` stops at the first failure.
        let r = run(&p, env, "redo", &["a", "b", "c"]).fails();
        assert!(r.stderr.contains("err  b"), "{}", r.stderr);
        assert!(!p.exists("c"), "redo stops at b");
        // With it, c is built, the failure is reported once, the exit status says it.
        let r = run(&p, env, "redo", &["--keep-going", "a", "b", "c"]).fails();
        assert_eq!(r.stderr.matches("err  b").count(), 1, "{}", r.stderr);
        assert_eq!(p.read("c"), "c\n");
        assert_eq!(p.runs("c.do"), 1);
        // `-k` is still goredo's "keep logs".
        run(&p, env, "redo", &["-k", "a"]).ok();
        assert!(p.exists(".redo/a.log"));
    });
}

#[test]
fn keep_going_reaches_the_other_dependencies_of_a_target_whose_dependency_fails() {
    let p = Project::new();
    p.write("x.in", "1\n");
    p.write("y.in", "1\n");
    p.do_file(
        "x.do",
        "redo-ifchange x.in\ntest \"$(cat x.in)\" = 1\ncat x.in\n",
    );
    p.do_file("y.do", "redo-ifchange y.in\ncat y.in\n");
    p.do_file("top.do", "redo-ifchange x y\ncat x y\n");
    p.do_file("all.do", "redo-ifchange top\n");
    p.ifchange(&["all"]).ok();
    // Both change; x now fails. Checking top visits x first.
    p.write("x.in", "22\n");
    p.write("y.in", "22\n");
    p.clear_runs();
    p.ifchange(&["all"]).fails();
    assert_eq!(
        p.runs("y.do"),
        0,
        "without --keep-going the check stops at x"
    );
    let r = p.ifchange(&["--keep-going", "all"]).fails();
    assert!(r.stderr.contains("err  "), "{}", r.stderr);
    assert_eq!(p.runs("y.do"), 1, "y rebuilt although x failed");
    assert_eq!(p.read("y"), "22\n");
}

#[test]
fn keep_going_is_passed_to_nested_commands() {
    let p = Project::new();
    p.do_file("bad.do", "exit 1\n");
    p.do_file("good.do", "echo good\n");
    p.do_file("all.do", "redo bad good\n");
    p.redo(&["all"]).fails();
    assert!(!p.exists("good"));
    p.redo(&["--keep-going", "all"]).fails();
    assert_eq!(p.read("good"), "good\n", "the nested redo kept going too");
}

#[test]
fn shuffle_builds_everything_in_another_order_and_is_exported() {
    let p = Project::new();
    p.write(
        "default.do",
        "echo \"$1\" >>order\necho \"${REDO_SHUFFLE:-}\"\n",
    );
    let names: Vec<String> = (1..=30).map(|i| format!("t{i}")).collect();
    let mut args: Vec<&str> = vec!["--shuffle"];
    args.extend(names.iter().map(String::as_str));
    run(&p, &[], "redo-ifchange", &args).ok();
    let order = lines(&p, "order");
    let mut sorted = order.clone();
    sorted.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
    assert_eq!(sorted, names, "every target built once");
    // 30! orders: the one given comes up by chance with probability 4e-33.
    assert_ne!(order, names, "not in the order given");
    assert_eq!(
        p.read("t1"),
        "1\n",
        "REDO_SHUFFLE=1 in the .do's environment"
    );
    // Without it, the order given.
    std::fs::remove_file(p.path("order")).unwrap();
    let mut args: Vec<&str> = vec!["-f"];
    args.extend(names.iter().map(String::as_str));
    run(&p, &[], "redo-ifchange", &args).ok();
    assert_eq!(lines(&p, "order"), names);
}
