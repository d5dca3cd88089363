//! A real browser for the tests: Debian's headless Chromium run on a local file, returning the
//! DOM after the page's scripts ran (`--dump-dom`) or a PNG screenshot, and a check that a
//! screenshot is not blank. Every run gets a fresh profile directory and no network
//! features; a run that outlives its timeout is killed. Without `/usr/bin/chromium` the tests
//! that need it fail and say to run `tests/setup-and-test.sh`, which installs it.
//!
//! Pages report on themselves through the DOM: the timings report sets
//! `<body data-status="ok">` when its script finished (`"error"` from `window.onerror`), and
//! [`attribute`] reads such attributes from the dumped DOM.

use crate::TempDir;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// What went wrong running the browser or reading its picture.
#[derive(Debug)]
pub enum Error {
    /// No browser at [`CHROMIUM`].
    Missing,
    Io {
        what: String,
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    Failed {
        status: String,
        stderr: String,
    },
    TimedOut(Duration),
    Png(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Missing => write!(
                f,
                "{CHROMIUM} is missing: the browser tests need Debian's chromium; run \
                 tests/setup-and-test.sh, which installs it"
            ),
            Error::Io { what, source } => write!(f, "cannot {what}: {source}"),
            Error::Failed { status, stderr } => write!(f, "chromium {status}: {stderr}"),
            Error::TimedOut(t) => write!(f, "chromium still running after {t:?}: killed"),
            Error::Png(e) => write!(f, "cannot decode the screenshot: {e}"),
        }
    }
}

impl std::error::Error for Error {}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The browser, found.
#[derive(Debug, Clone)]
pub struct Chromium {
    bin: PathBuf,
    /// How long one run may take before it is killed.
    pub timeout: Duration,
}

/// A screenshot: the PNG's bytes, and where it was written.
#[derive(Debug)]
pub struct Screenshot {
    pub path: PathBuf,
    pub png: Vec<u8>,
}

impl Chromium {
    pub fn find() -> Result<Chromium, Error> {
        let bin = PathBuf::from(CHROMIUM);
        if !bin.exists() {
            return Err(Error::Missing);
        }
        Ok(Chromium {
            bin,
            timeout: Duration::from_secs(90),
        })
    }

    /// [`Chromium::find`], or the test fails saying how to install it.
    pub fn require() -> Chromium {
        Chromium::find().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The page's DOM once it has loaded and its scripts have run.
    pub fn dump_dom(&self, page: &Path) -> Result<String, Error> {
        self.dump_dom_at(page, "")
    }

    /// [`Chromium::dump_dom`] of the page's URL with `#fragment` (none when empty).
    pub fn dump_dom_at(&self, page: &Path, fragment: &str) -> Result<String, Error> {
        let out = self.run(page, fragment, &["--dump-dom".to_string()])?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// A `width`×`height` screenshot of the page, written to `png` (its directory must exist).
    pub fn screenshot(
        &self,
        page: &Path,
        png: &Path,
        width: u32,
        height: u32,
    ) -> Result<Screenshot, Error> {
        let _ = fs::remove_file(png);
        self.run(
            page,
            "",
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
                "--hide-scrollbars".to_string(),
            ],
        )?;
        let bytes = fs::read(png).map_err(io(format!("read {}", png.display())))?;
        Ok(Screenshot {
            path: png.to_path_buf(),
            png: bytes,
        })
    }

    /// Runs the browser headless on `page` (with `#fragment` unless empty) with `extra`
    /// arguments; returns its stdout.
    fn run(&self, page: &Path, fragment: &str, extra: &[String]) -> Result<Vec<u8>, Error> {
        let profile = TempDir::new("chromium-profile");
        let stdout_path = profile.0.join("stdout");
        let stderr_path = profile.0.join("stderr");
        let file = |p: &Path| fs::File::create(p).map_err(io(format!("create {}", p.display())));
        let page = fs::canonicalize(page).map_err(io(format!("find {}", page.display())))?;
        let mut url = format!("file://{}", page.display());
        if !fragment.is_empty() {
            url = format!("{url}#{fragment}");
        }
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.0.join("profile").display()
            ))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(file(&stdout_path)?)
            .stderr(file(&stderr_path)?)
            .spawn()
            .map_err(io(format!("run {}", self.bin.display())))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().map_err(io("wait for chromium"))? {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::TimedOut(self.timeout));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if !status.success() {
            return Err(Error::Failed {
                status: status.to_string(),
                stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
            });
        }
        fs::read(&stdout_path).map_err(io("read chromium's output"))
    }
}

/// The value of `name="…"` on the first element of the dumped `dom` that carries it
/// (`attribute(dom, "data-status")`), entities left as they are.
pub fn attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = dom.find(&key)? + key.len();
    let end = start + dom[start..].find('"')?;
    Some(&dom[start..end])
}

/// What a screenshot holds: its size, how many distinct colours, and how many pixels differ
/// from its top-left pixel (the background).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub colours: usize,
    pub non_background: usize,
}

/// A decoded PNG: 8-bit samples, `channels` a pixel.
struct Decoded {
    width: u32,
    height: u32,
    channels: usize,
    samples: Vec<u8>,
}

impl Decoded {
    fn of(png: &[u8]) -> Result<Decoded, Error> {
        let fail = |e: png::DecodingError| Error::Png(e.to_string());
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(fail)?;
        let mut samples = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let frame = reader.next_frame(&mut samples).map_err(fail)?;
        samples.truncate(frame.buffer_size());
        Ok(Decoded {
            width: frame.width,
            height: frame.height,
            channels: frame.color_type.samples(),
            samples,
        })
    }

    fn pixels(&self) -> impl Iterator<Item = &[u8]> {
        self.samples.chunks_exact(self.channels)
    }
}

/// How many pixels of the PNG have exactly the colour `rgb` (alpha ignored).
pub fn count_colour(png: &[u8], rgb: [u8; 3]) -> Result<usize, Error> {
    let d = Decoded::of(png)?;
    Ok(d.pixels().filter(|p| p.get(..3) == Some(&rgb[..])).count())
}

impl Picture {
    pub fn of(png: &[u8]) -> Result<Picture, Error> {
        let d = Decoded::of(png)?;
        let background = d.pixels().next().unwrap_or(&[]);
        let colours: std::collections::HashSet<&[u8]> = d.pixels().collect();
        Ok(Picture {
            width: d.width,
            height: d.height,
            colours: colours.len(),
            non_background: d.pixels().filter(|p| *p != background).count(),
        })
    }

    /// Not blank: more than a handful of colours and at least `min_fraction` of the pixels
    /// off the background.
    pub fn is_drawn(&self, min_fraction: f64) -> bool {
        let total = (self.width as usize * self.height as usize).max(1);
        self.colours > 8 && self.non_background as f64 / total as f64 >= min_fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| pixel(x, y))
            .collect();
        w.write_image_data(&data).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn a_blank_picture_is_not_drawn_and_a_busy_one_is() {
        let blank = Picture::of(&png_of(40, 30, |_, _| [255, 255, 255])).unwrap();
        assert_eq!((blank.width, blank.height, blank.colours), (40, 30, 1));
        assert_eq!(blank.non_background, 0);
        assert!(!blank.is_drawn(0.01));
        let busy = Picture::of(&png_of(40, 30, |x, y| {
            if y < 10 {
                [255, 255, 255]
            } else {
                [(x * 6) as u8, (y * 8) as u8, 100]
            }
        }))
        .unwrap();
        assert!(busy.colours > 8);
        assert_eq!(busy.non_background, 40 * 20);
        assert!(busy.is_drawn(0.5));
        assert!(!busy.is_drawn(0.9));
        assert!(Picture::of(b"not a png").is_err());
        let png = png_of(4, 5, |x, _| if x == 0 { [1, 2, 3] } else { [9, 9, 9] });
        assert_eq!(count_colour(&png, [1, 2, 3]).unwrap(), 5);
        assert_eq!(count_colour(&png, [9, 9, 9]).unwrap(), 15);
    }

    #[test]
    fn attributes_are_read_from_the_dumped_dom() {
        let dom = r#"<html><body class="x" data-status="ok" data-bars="12"></body></html>"#;
        assert_eq!(attribute(dom, "data-status"), Some("ok"));
        assert_eq!(attribute(dom, "data-bars"), Some("12"));
        assert_eq!(attribute(dom, "data-none"), None);
    }
}
