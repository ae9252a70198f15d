//! One command-line flag per config knob, generated from the knobs'
//! declarations ([`TrainConfig::knobs`]), so that a new knob gets its flag
//! and help where it is declared.

use clap::{Arg, ArgMatches, Command};

use crate::config::TrainConfig;

/// The (config path, raw value) pairs given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides(pub Vec<(String, String)>);

impl clap::FromArgMatches for Overrides {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let pairs = TrainConfig::knobs()
            .into_iter()
            .filter_map(|k| {
                let v = m.get_one::<String>(k.flag)?;
                Some((k.path, v.clone()))
            })
            .collect();
        Ok(Overrides(pairs))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Overrides {
    fn augment_args(cmd: Command) -> Command {
        TrainConfig::knobs().into_iter().fold(cmd, |cmd, k| {
            cmd.arg(
                Arg::new(k.flag)
                    .long(k.flag)
                    .value_name("VALUE")
                    .help(format!("{} [{}]", k.help(), k.path))
                    .help_heading("Config (every key of the TOML config)"),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    #[test]
    fn flags_map_to_config_paths() {
        let cmd = Overrides::augment_args(Command::new("t"));
        let m = cmd
            .try_get_matches_from(["t", "--objective", "grpo", "--rl-steps", "3", "--sft-lr", "0.01", "--top-p", "0.9"])
            .unwrap();
        let o = Overrides::from_arg_matches(&m).unwrap();
        assert!(o.0.contains(&("objective.name".into(), "grpo".into())));
        assert!(o.0.contains(&("rl.steps".into(), "3".into())));
        assert!(o.0.contains(&("sft.lr".into(), "0.01".into())));
        assert!(o.0.contains(&("rollout.top_p".into(), "0.9".into())));
        assert_eq!(o.0.len(), 4);
    }

    #[test]
    fn unknown_flags_are_rejected() {
        let cmd = Overrides::augment_args(Command::new("t"));
        assert!(cmd.try_get_matches_from(["t", "--rl-stepz", "3"]).is_err());
    }
}
