//! Choosing the policy by `backend`: one code path, generic over [`wapo_core::rl::Policy`].

/// Runs `$body` with `$p` bound to a fresh policy of `$cfg`'s model on its
/// backend (`cpu`: the dfdx-backed CPU GPT with the fused objective; `wgpu`:
/// the GPU GPT). A macro, because the body is generic over the policy type.
macro_rules! with_policy {
    ($cfg:expr, $task:expr, |$p:ident| $body:expr) => {{
        let (cfg, model) = ($cfg, $cfg.model_config($task));
        match cfg.backend {
            $crate::config::Backend::Cpu => {
                let $p = wapo_cpu::gpt::Gpt::<wapo_cpu::CpuTensor>::new(model, cfg.seed)?;
                $body
            }
            $crate::config::Backend::Wgpu => {
                let dev = wapo_wgpu::WgpuContext::new()?;
                let $p = wapo_wgpu::gpt::WgpuGpt::new(&dev, model, cfg.seed)?;
                $body
            }
        }
    }};
}
