//! Choosing the policy by `backend`: one code path, generic over [`wapo_core::rl::Policy`].

/// Runs `$body` with `$p` bound to a fresh policy of `$cfg`'s model on its
/// backend (`cpu`: the dfdx-backed CPU GPT with the fused objective; `wgpu`:
/// the GPU GPT). A macro, because the body is generic over the policy type.
macro_rules! with_policy {
    ($cfg:expr, $task:expr, |$p:ident| $body:expr) => {{
        let (cfg, model) = ($cfg, $cfg.model_config($task));
        match cfg.backend {
            $crate::config::Backend::Cpu => {
                let $p = wapo_cpu::model::CpuModel::<wapo_cpu::CpuTensor>::new(model, cfg.seed)?;
                $body
            }
            $crate::config::Backend::Wgpu => {
                let dev = wapo_wgpu::WgpuContext::new()?;
                let $p = wapo_wgpu::model::WgpuModel::new(&dev, model, cfg.seed)?;
                $body
            }
        }
    }};
}

/// Runs `$body` with `$p` bound to the pretrained model at `$path` on
/// `$backend` and `$meta` to the rest of the file
/// ([`crate::llm::Meta`]: config, tokenizer, names for writing it out). The
/// file's tensors are dropped once copied into the policy.
macro_rules! with_pretrained {
    ($backend:expr, $path:expr, |$p:ident, $meta:ident| $body:expr) => {{
        let wapo_io::model::Loaded { config, tensors, tokenizer, architecture, model_type } =
            wapo_io::model::load($path)?;
        let $meta = $crate::llm::Meta { config, tokenizer, architecture, model_type };
        match $backend {
            $crate::config::Backend::Cpu => {
                let $p =
                    wapo_cpu::model::CpuModel::<wapo_cpu::CpuTensor>::from_named(config, &tensors, Default::default())?;
                drop(tensors);
                $body
            }
            $crate::config::Backend::Wgpu => {
                let dev = wapo_wgpu::WgpuContext::new()?;
                let $p = wapo_wgpu::model::WgpuModel::from_named(&dev, config, &tensors)?;
                drop(tensors);
                $body
            }
        }
    }};
}
