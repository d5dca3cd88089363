//! Starting the `.do` process: its interpreter (`#!`), its environment, its descriptors.

use super::*;

/// The start of a `.do`, where a `#!` line would be (see [`dofile::interpreter`]).
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(dofile::SHEBANG_MAX);
    File::open(path)?
        .take(dofile::SHEBANG_MAX as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Whether the kernel can run an executable file that starts with `head`: a script with a `#!`
/// line, or a binary (a program's format has NUL bytes early; text has none). A text file
/// without a `#!` line cannot be run as a program (`ENOEXEC`, goredo's `exec format error`;
/// the C library's `execvp` would quietly run it with `/bin/sh`, without goredo's `-e`).
pub(super) fn kernel_runs(head: &[u8]) -> bool {
    head.starts_with(b"#!") || head.contains(&0)
}

/// How a `.do` is run, as its file says: remembered per `.do` and stat, since every target of
/// one `default.*.do` would otherwise cost an `access`, an `open` and a `read` of the same file.
#[derive(Clone)]
pub(super) enum How {
    Executable,
    /// A `#!` line: the interpreter and its arguments.
    Shebang(Vec<OsString>),
    Shell,
}

/// How the `.do` is run: itself when executable, the interpreter its `#!` line names, else
/// goredo's `sh -e` (`-ex` when traced). `true`: from a `#!` line.
pub(super) fn interpreter(
    px: &Processes,
    flight: &Flight,
    dof: &dofile::DoFile,
    do_stamp: Option<Stamp>,
    fs_: &dyn crate::fs::Fs,
) -> Result<(OsString, Vec<OsString>, bool), JobError> {
    let with_do = |cause: Error| super::run::with_do(dof, cause, None);
    let known = do_stamp.and_then(|st| {
        let map = crate::sync::lock(&px.interpreters);
        map.get(&dof.path)
            .filter(|(at, _)| *at == st)
            .map(|(_, how)| how.clone())
    });
    let how = match known {
        Some(how) => how,
        None => {
            let head =
                || read_head(&dof.path).map_err(|e| with_do(Error::io("read", &dof.path)(e)));
            let how = if fs_.executable(&dof.path) {
                if !kernel_runs(&head()?) {
                    return Err(with_do(Error::NoShebang(dof.path.clone())));
                }
                How::Executable
            } else {
                let head = head()?;
                match dofile::interpreter(&head, &dof.path).map_err(|e| with_do(e.into()))? {
                    Some(argv) if !argv.is_empty() => How::Shebang(argv),
                    _ => How::Shell,
                }
            };
            if let Some(st) = do_stamp {
                // A `chmod` or an edit changes the ctime, hence the stamp: asked again then.
                crate::sync::lock(&px.interpreters).insert(dof.path.clone(), (st, how.clone()));
            }
            how
        }
    };
    let traced = flight.origin.trace || flight.origin.settings.trace_all;
    Ok(match how {
        How::Executable => (dof.path.clone().into_os_string(), Vec::new(), false),
        How::Shebang(mut argv) => {
            let program = argv.remove(0);
            argv.push(dof.name.clone());
            (program, argv, true)
        }
        How::Shell => (
            "/bin/sh".into(),
            vec![if traced { "-ex" } else { "-e" }.into(), dof.name.clone()],
            false,
        ),
    })
}

/// Spawns the `.do` through the spawner ([`crate::spawner`]): under the requester's umask, in
/// `cwd`, in a process group of its own, with the job tokens' pipe at its own numbers when
/// they are advertised as descriptors (`inherit`). An executable `.do` still open for writing
/// somewhere (`ETXTBSY`, e.g. an editor saving it) is retried briefly instead of failing the
/// build.
pub(super) async fn spawn(
    px: &Processes,
    flight: &Flight,
    req: SpawnRequest<'_>,
    inherit: bool,
) -> io::Result<crate::spawner::Proc> {
    let keep = match inherit {
        true => flight.session.tokens.children_fds(),
        false => Vec::new(),
    };
    let mut attempt = 0;
    loop {
        let result = px
            .spawner
            .spawn(crate::spawner::Request {
                program: req.program,
                args: req.args,
                env: req.env,
                cwd: req.cwd,
                umask: flight.origin.umask,
                stdin: px.devnull.as_fd(),
                stdout: req.stdout,
                stderr: req.stderr,
                keep: &keep,
            })
            .await;
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// What [`spawn`] starts.
pub(super) struct SpawnRequest<'a> {
    pub(super) program: &'a OsStr,
    pub(super) args: &'a [OsString],
    pub(super) env: &'a [(OsString, OsString)],
    pub(super) cwd: &'a Path,
    pub(super) stdout: std::os::fd::BorrowedFd<'a>,
    pub(super) stderr: std::os::fd::BorrowedFd<'a>,
}

/// Variables the daemon sets for a `.do`; whatever the requester's environment had under
/// these names is replaced.
pub(super) const SET_BY_DAEMON: &[&str] = &[
    "REDO_LEVEL",
    "REDO_DIRPREFIX",
    "REDO_BUILD_UUID",
    "REDO_DEP_CWD",
    "REDO_TOP_DIR",
    "PWD",
    "PATH",
    redo_proto::env::SOCKET,
    redo_proto::env::JOB,
    "MAKEFLAGS",
    // goredo's own plumbing: meaningless here and misleading if inherited from a goredo parent.
    "REDO_DEP_FD",
    "REDO_STDERR_PREFIX",
    "REDO_STATUS_FD",
    "REDO_OOD_TGTS_FD",
    "REDO_OOD_TGTS_LOCK_FD",
    "REDO_JS_FD",
    "REDO_JS_TOKEN",
];

/// The `.do`'s environment: the requester's, plus where the daemon is and which job this is.
/// Also whether the jobserver's descriptors must be inherited.
pub(super) fn child_env(
    engine: &Engine,
    flight: &Flight,
    dof: &dofile::DoFile,
    job: u64,
) -> (Vec<(OsString, OsString)>, bool) {
    let origin = &flight.origin;
    let mut env: Vec<(OsString, OsString)> = origin
        .env
        .0
        .iter()
        .filter(|(k, _)| !SET_BY_DAEMON.iter().any(|s| k.as_bytes() == s.as_bytes()))
        .cloned()
        .collect();
    let mut set = |k: &str, v: OsString| env.push((k.into(), v));
    set("REDO_LEVEL", (flight.level + 1).to_string().into());
    set("REDO_DIRPREFIX", dof.dir_prefix.clone().into_os_string());
    set("REDO_BUILD_UUID", flight.session.uuid.clone().into());
    set("REDO_DEP_CWD", dof.dir.clone().into_os_string());
    set("PWD", dof.dir.clone().into_os_string());
    set(
        redo_proto::env::SOCKET,
        engine.socket().as_os_str().to_os_string(),
    );
    set(redo_proto::env::JOB, job.to_string().into());
    if let Some(top) = &origin.settings.top_dir {
        set("REDO_TOP_DIR", top.clone().into_os_string());
    }
    // The daemon's command links first (`super::commands`), so that `redo-ifchange` in a .do
    // is this daemon's, even when it was started straight from a cargo target directory.
    let inherited = origin
        .env
        .get("PATH")
        .map(OsStr::as_bytes)
        .unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let first = super::commands::first_on_path(&origin.client_dir)
        .as_os_str()
        .as_bytes();
    let path = if first.is_empty() || inherited.split(|&b| b == b':').next() == Some(first) {
        inherited.to_vec()
    } else {
        [first, b":", inherited].concat()
    };
    set("PATH", OsString::from_vec(path));
    // make run by the .do shares this build's job tokens.
    let makeflags = origin
        .env
        .get("MAKEFLAGS")
        .map(OsStr::as_bytes)
        .unwrap_or(b"");
    let tokens = &flight.session.tokens;
    let mut inherit = false;
    match tokens.for_children() {
        Some(js) => {
            let (flags, js_fd, fds) =
                jobserver::advertise(makeflags, &js, tokens.limit(), origin.settings.make);
            inherit = fds;
            match flags {
                Some(f) => set("MAKEFLAGS", OsString::from_vec(f)),
                None => set("MAKEFLAGS", OsString::from_vec(makeflags.to_vec())),
            }
            if let Some(fd) = js_fd {
                set("REDO_JS_FD", OsString::from_vec(fd));
            }
        }
        // No pipe to share: an outer make's descriptors are not open here, so its jobserver
        // words would only earn a "jobserver unavailable" warning.
        None if !makeflags.is_empty() => set(
            "MAKEFLAGS",
            OsString::from_vec(jobserver::without_jobserver(makeflags)),
        ),
        None => {}
    }
    (env, inherit)
}
