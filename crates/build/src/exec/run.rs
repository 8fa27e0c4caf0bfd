//! RUN: a container on the previous step's image (the stage's env, ARGs, workdir and user;
//! no entrypoint), its output streamed into the build's, and its writable layer committed
//! with strata's commit (copied, no tar) onto the image's top layer.

use strata_engine::container::{StartOptions, Started};
use strata_engine::{ContainerConfig, NetworkMode, RemoveOptions};

use super::{config, Builder, Stage};
use crate::dockerfile::Instruction;
use crate::error::Result;

impl Builder<'_, '_> {
    pub(super) fn run_step(&mut self, stage: &mut Stage, i: &Instruction) -> Result<()> {
        if !i.flag_values("mount").is_empty() {
            return Err(Self::fail(i, "RUN --mount is not supported by strata's builder yet: COPY what the step needs instead"));
        }
        if i.flag("security").is_some() {
            return Err(Self::fail(
                i,
                "RUN --security is not supported: strata's build steps run unprivileged",
            ));
        }
        let network = match i.flag("network") {
            None | Some("default") => self.options.network.clone(),
            Some("none") => NetworkMode::None,
            Some("host") => NetworkMode::Host,
            Some(other) => {
                return Err(Self::fail(i, format!("RUN --network={other}: strata's build steps run with none or host networking (it has no networks yet)")))
            }
        };
        let argv = self.run_argv(stage, i);
        let env = config::env(&stage.config);
        let run_env = stage.vars.run_env(&env);
        // As Docker's history shows a RUN with build args: `|2 A=1 B=2 /bin/sh -c ...`.
        let created_by = if run_env.is_empty() {
            argv.join(" ")
        } else {
            format!(
                "|{} {} {}",
                run_env.len(),
                run_env.join(" "),
                argv.join(" ")
            )
        };
        let key = format!("RUN\n{created_by}\n{network:?}");
        self.cached(stage, &key, |b, stage| {
            b.run_container(
                stage,
                i,
                argv,
                env.into_iter().chain(run_env).collect(),
                network,
                &created_by,
            )
        })
    }

    /// The command: the exec form as written, else the stage's shell with the text (a lone
    /// heredoc is the script itself; heredocs after a command stay in the shell's text,
    /// where the shell reads them).
    fn run_argv(&self, stage: &Stage, i: &Instruction) -> Vec<String> {
        if let Some(j) = &i.json {
            return j.clone();
        }
        let mut shell = config::strings(&stage.config, "Shell")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let text = match i.heredocs.as_slice() {
            [only]
                if i.args.trim_start().starts_with("<<")
                    && i.args.split_whitespace().count() == 1 =>
            {
                only.body.clone()
            }
            [] => i.args.clone(),
            docs => {
                let mut t = i.args.clone();
                for d in docs {
                    t.push('\n');
                    t.push_str(&d.body);
                    t.push_str(&d.name);
                }
                t
            }
        };
        shell.push(text);
        shell
    }

    fn run_container(
        &mut self,
        stage: &Stage,
        i: &Instruction,
        argv: Vec<String>,
        env: Vec<String>,
        network: NetworkMode,
        created_by: &str,
    ) -> Result<strata_image::Image> {
        let containers = self.engine.containers();
        let cfg = ContainerConfig {
            image: stage.image.id.clone(),
            cmd: argv,
            entrypoint: Some(Vec::new()),
            env,
            workdir: config::string(&stage.config, "WorkingDir"),
            user: config::string(&stage.config, "User"),
            network,
            ..ContainerConfig::default()
        };
        let c = containers.create(&stage.image.id, cfg, None)?;
        let short_c = c.id[..12].to_string();
        self.say(&format!(" ---> Running in {short_c}\n"));
        let outcome = self.run_attached(&c);
        let code = match outcome {
            Ok(code) => code,
            Err(e) => {
                self.remove_container(&c.id, true);
                return Err(e);
            }
        };
        if code != 0 {
            let keep = !(self.options.remove || self.options.force_remove);
            if !keep {
                self.remove_container(&c.id, true);
            }
            let kept = if keep {
                format!(" (its container {short_c} is kept)")
            } else {
                String::new()
            };
            return Err(Self::fail(
                i,
                format!(
                    "step {}/{}: the command '{}' returned a non-zero code: {code}{kept}",
                    self.step, self.total, created_by
                ),
            ));
        }
        let base = stage.config.clone();
        let top = stage.image.top_layer.clone();
        let image = self
            .engine
            .images()
            .commit_rw_with(&c.rw_layer, top.as_ref(), |diff| {
                Ok(config::advance(base, created_by, diff))
            });
        if self.options.remove || image.is_err() {
            self.remove_container(&c.id, false);
            self.say(&format!("Removing intermediate container {short_c}\n"));
        }
        Ok(image?)
    }

    /// Starts `c` and copies its output into the build's until it exits; its exit code.
    fn run_attached(&mut self, c: &strata_engine::Container) -> Result<i64> {
        let containers = self.engine.containers();
        let (mut log, waiter) = containers.follow_log(c)?;
        let options = StartOptions {
            monitor: self.options.monitor.clone(),
            attach_stdin: false,
        };
        let Started { mut monitor, .. } = containers.start(&c.id, &options)?;
        let waiter = waiter.with_process(monitor.id())?;
        loop {
            for e in log.read_new()? {
                self.say(&e.log);
            }
            if monitor
                .try_wait()
                .map_err(|e| crate::Error::io("waiting for a RUN step", e))?
                .is_some()
            {
                break;
            }
            waiter.wait()?;
        }
        for e in log.read_new()? {
            self.say(&e.log);
        }
        let now = containers.get(&c.id)?;
        Ok(now.exit_code.unwrap_or(255))
    }

    fn remove_container(&self, id: &str, force: bool) {
        let options = RemoveOptions {
            force,
            volumes: true,
        };
        if let Err(e) = self.engine.containers().remove(id, &options) {
            tracing::warn!("removing build container {id}: {e}");
        }
    }
}
