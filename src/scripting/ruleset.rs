//! The RuleSet: config, pipelines and compiled scripts, loaded together and
//! immutable once built. Its version is a hash of every file it was built
//! from, recorded with each event it processes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Dynamic, Engine, Scope, AST};
use sha2::{Digest, Sha256};

use crate::domain::config::Config;
use crate::domain::diagnostic::Diagnostic;
use crate::scripting::pipeline::{self, RuleDecl};
use crate::scripting::script::sandboxed_engine;
use crate::scripting::script_check::{self, Known};

/// One rule, ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    pub decl: RuleDecl,
    /// The script file, as shown in messages.
    pub script_file: PathBuf,
    pub script: Rc<AST>,
    pub condition: Option<Rc<AST>>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.decl.name
    }
}

/// Everything the engine needs to apply the policies.
#[derive(Clone)]
pub struct RuleSet {
    pub config: Config,
    pub rules_dir: PathBuf,
    /// Every declared rule, enabled or not, in pipeline order.
    pub rules: Vec<Rule>,
    /// Enabled rules by event type, in pipeline order (indexes in `rules`).
    by_type: HashMap<String, Vec<usize>>,
    /// `settings`, as scripts see them.
    pub settings: Dynamic,
    /// Short hash of the config, pipelines and scripts.
    pub version: String,
    /// Each file the RuleSet was built from, with a hash of its content.
    pub files: BTreeMap<PathBuf, String>,
    /// What is not wrong but likely a mistake (a script no rule uses).
    pub warnings: Vec<Diagnostic>,
}

/// Where a rule's `when` expression starts in its pipeline file.
fn condition_origin(decl: &RuleDecl, pipelines: &[(PathBuf, String)]) -> script_check::Origin {
    let line = decl.when_line.saturating_sub(1);
    let column = pipelines
        .iter()
        .find(|(path, _)| *path == decl.file)
        .and_then(|(_, text)| text.lines().nth(line))
        .zip(decl.when.as_deref().and_then(|w| w.lines().next()))
        .and_then(|(source, first)| source.find(first))
        .map_or(0, |byte| byte);
    (line, column)
}

/// A warning for each script that no declared rule runs.
fn unused_scripts(scripts: &BTreeMap<PathBuf, Rc<AST>>, rules: &[Rule]) -> Vec<Diagnostic> {
    scripts
        .keys()
        .filter(|path| !rules.iter().any(|r| &r.script_file == *path))
        .map(|path| Diagnostic::file(path, "no rule of any pipeline runs this script"))
        .collect()
}

/// The variables every script and condition sees, as constants.
pub fn script_scope<'a>(event: Dynamic, settings: Dynamic) -> Scope<'a> {
    let mut scope = Scope::new();
    scope.push_constant("event", event);
    scope.push_constant("settings", settings);
    scope
}

/// The same variables, declared for the compiler so that strict mode
/// accepts them. Not as constants: the optimizer would replace each bare
/// use of a constant by its value at compile time, `()`.
fn compile_scope<'a>() -> Scope<'a> {
    let mut scope = Scope::new();
    scope.push_dynamic("event", Dynamic::UNIT);
    scope.push_dynamic("settings", Dynamic::UNIT);
    scope
}

impl RuleSet {
    /// Loads the rules of `config`, or of `rules_dir` when given (to try
    /// candidate rules). All problems are collected.
    pub fn load(config: Config, rules_dir: Option<&Path>) -> Result<RuleSet, Vec<Diagnostic>> {
        let rules_dir = rules_dir.map_or_else(|| config.rules_dir.clone(), Path::to_path_buf);
        let files = RuleFiles::read(&rules_dir)?;
        let mut problems = Vec::new();
        let engine = sandboxed_engine();
        let scripts = compile_scripts(&engine, &files.scripts, &mut problems);
        let mut decls = Vec::new();
        for (path, text) in &files.pipelines {
            let (found, errors) = pipeline::parse(path, text);
            decls.extend(found);
            problems.extend(errors);
        }
        if files.pipelines.is_empty() {
            problems.push(Diagnostic::file(
                &rules_dir,
                "has no pipeline (*.toml): no rule would run; see rules/pipeline.toml of `inboxd init`",
            ));
        }
        let rules = link(&engine, decls, &rules_dir, &scripts, &mut problems);
        let webhooks: Vec<String> = config.webhooks.iter().map(|w| w.name.clone()).collect();
        let known = Known::new(&engine, &config.settings, &webhooks);
        for (path, ast) in &scripts {
            problems.extend(script_check::check(ast, path, (0, 0), &known));
        }
        for rule in &rules {
            if let Some(condition) = &rule.condition {
                let origin = condition_origin(&rule.decl, &files.pipelines);
                problems.extend(script_check::check(
                    condition,
                    &rule.decl.file,
                    origin,
                    &known,
                ));
            }
        }
        let warnings = unused_scripts(&scripts, &rules);
        // Shared, so that each rule's scope gets it without a deep copy;
        // read-only inside, or a script could change it for every later one.
        let settings = rhai::serde::to_dynamic(&config.settings)
            .map_err(|e| vec![Diagnostic::file(&config.file, format!("[settings]: {e}"))])?
            .into_read_only()
            .into_shared();
        if !problems.is_empty() {
            return Err(problems);
        }
        let (version, file_hashes) = files.version(&config.file, &rules_dir);
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.decl.enabled) {
            for t in &rule.decl.on {
                by_type.entry(t.clone()).or_default().push(i);
            }
        }
        Ok(RuleSet {
            config,
            rules_dir,
            rules,
            by_type,
            settings,
            version,
            files: file_hashes,
            warnings,
        })
    }

    /// The files added, changed and removed since `old`, for the reload log.
    pub fn changes_since(&self, old: &RuleSet) -> String {
        let mut parts = Vec::new();
        for (path, hash) in &self.files {
            match old.files.get(path) {
                None => parts.push(format!("added {}", path.display())),
                Some(h) if h != hash => parts.push(format!("changed {}", path.display())),
                Some(_) => {}
            }
        }
        for path in old.files.keys().filter(|p| !self.files.contains_key(*p)) {
            parts.push(format!("removed {}", path.display()));
        }
        if parts.is_empty() {
            "no file changed".into()
        } else {
            parts.join(", ")
        }
    }

    /// The enabled rules for an event type, in pipeline order.
    pub fn rules_for<'a>(&'a self, event_type: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.by_type
            .get(event_type)
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i])
    }
}

/// The files of a rules directory, read once.
struct RuleFiles {
    pipelines: Vec<(PathBuf, String)>,
    scripts: Vec<(PathBuf, String)>,
}

impl RuleFiles {
    fn read(dir: &Path) -> Result<RuleFiles, Vec<Diagnostic>> {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(vec![Diagnostic::file(
                    dir,
                    "the rules directory ([rules] dir) is not a directory",
                )])
            }
            Err(e) => {
                return Err(vec![Diagnostic::file(
                    dir,
                    format!("cannot read the rules directory ([rules] dir): {e}"),
                )])
            }
        }
        // Pipelines at the top of the directory; scripts anywhere below it
        // (`rules/tests/` holds rule tests, not pipelines).
        let mut paths = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                vec![Diagnostic::file(
                    dir,
                    format!("cannot read the rules directory: {e}"),
                )]
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let kind = entry.path().extension().and_then(|e| e.to_str());
            if kind == Some("rhai") || (kind == Some("toml") && entry.depth() == 1) {
                paths.push(entry.into_path());
            }
        }
        let mut files = RuleFiles {
            pipelines: Vec::new(),
            scripts: Vec::new(),
        };
        let mut problems = Vec::new();
        let root = std::fs::canonicalize(dir).map_err(|e| {
            vec![Diagnostic::file(
                dir,
                format!("cannot read the rules directory: {e}"),
            )]
        })?;
        for path in paths {
            let list = match path.extension().and_then(|e| e.to_str()) {
                Some("toml") => &mut files.pipelines,
                Some("rhai") => &mut files.scripts,
                _ => continue,
            };
            match std::fs::canonicalize(&path) {
                Ok(real) if real.starts_with(&root) => {}
                Ok(_) => {
                    problems.push(Diagnostic::file(
                        &path,
                        "is a link that leads outside the rules directory; rules must live in it",
                    ));
                    continue;
                }
                Err(e) => {
                    problems.push(Diagnostic::file(&path, format!("cannot read: {e}")));
                    continue;
                }
            }
            match crate::regular_file::read(&path) {
                Ok(text) => list.push((path, text)),
                Err(e) => problems.push(Diagnostic::file(&path, format!("cannot read: {e}"))),
            }
        }
        if problems.is_empty() {
            Ok(files)
        } else {
            Err(problems)
        }
    }

    /// A hash of the config file and of every rule file, names included,
    /// and the hash of each file.
    fn version(&self, config_file: &Path, dir: &Path) -> (String, BTreeMap<PathBuf, String>) {
        let config = crate::regular_file::read(config_file)
            .unwrap_or_default()
            .into_bytes();
        let mut files = BTreeMap::from([(config_file.to_path_buf(), short_hash(&config))]);
        let mut hash = Sha256::new();
        hash.update(&config);
        for (path, text) in self.pipelines.iter().chain(&self.scripts) {
            let name = path.strip_prefix(dir).unwrap_or(path).to_string_lossy();
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
            files.insert(path.clone(), short_hash(text.as_bytes()));
        }
        (hex(&hash.finalize()[..6]), files)
    }
}

fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..6])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles every script of the directory, referenced or not, so that a
/// broken file is found before a pipeline points at it.
fn compile_scripts(
    engine: &Engine,
    scripts: &[(PathBuf, String)],
    problems: &mut Vec<Diagnostic>,
) -> BTreeMap<PathBuf, Rc<AST>> {
    let scope = compile_scope();
    let mut compiled = BTreeMap::new();
    for (path, text) in scripts {
        match engine.compile_with_scope(&scope, text) {
            Ok(mut ast) => {
                ast.set_source(path.to_string_lossy().as_ref());
                compiled.insert(path.clone(), Rc::new(ast));
            }
            Err(e) => {
                let line = e.1.line().unwrap_or(0);
                let column = e.1.position().unwrap_or(0);
                problems.push(Diagnostic::at(path, line, column, e.0.to_string()));
            }
        }
    }
    compiled
}

/// Joins each declared rule to its compiled script and condition.
fn link(
    engine: &Engine,
    decls: Vec<RuleDecl>,
    rules_dir: &Path,
    scripts: &BTreeMap<PathBuf, Rc<AST>>,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    let scope = compile_scope();
    let mut rules: Vec<Rule> = Vec::new();
    for decl in decls {
        if rules.iter().any(|r| r.decl.name == decl.name) {
            problems.push(Diagnostic::at(
                &decl.file,
                decl.name_line,
                1,
                format!("rule {:?} is declared twice", decl.name),
            ));
            continue;
        }
        let script_file = rules_dir.join(&decl.script);
        let Some(script) = scripts.get(&script_file) else {
            if !problems.iter().any(|p| p.file == script_file) {
                problems.push(Diagnostic::at(
                    &decl.file,
                    decl.script_line,
                    1,
                    format!(
                        "rule {:?}: no script {} in {}",
                        decl.name,
                        decl.script.display(),
                        rules_dir.display()
                    ),
                ));
            }
            continue;
        };
        let condition = match &decl.when {
            None => None,
            Some(when) => match engine.compile_expression_with_scope(&scope, when) {
                Ok(ast) => Some(Rc::new(ast)),
                Err(e) => {
                    problems.push(Diagnostic::at(
                        &decl.file,
                        decl.when_line,
                        1,
                        format!("rule {:?}: condition `when`: {e}", decl.name),
                    ));
                    continue;
                }
            },
        };
        rules.push(Rule {
            script_file,
            script: Rc::clone(script),
            condition,
            decl,
        });
    }
    rules
}
