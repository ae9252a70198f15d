"""A TRL-style GRPO loop whose loss is wapo.torch.objective.

In a TRL GRPOTrainer subclass the same swap is one method::

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        logits = model(ids).logits[:, inputs["prompt_ids"].size(1) - 1 : -1] / self.temperature
        logprobs = logits.log_softmax(-1).gather(-1, inputs["completion_ids"][..., None])[..., 0]
        return wapo.torch.objective(self.wapo_cfg, logprobs, inputs["old_per_token_logps"],
                                    inputs["rewards"], inputs["group_ids"], inputs["completion_mask"])

(the rollout keeps the raw rewards and the group of each completion instead
of TRL's advantages: the objective forms the advantages itself).

Here the policy is a toy: each of a few prompts should answer with the token
TARGET at every position; a completion's reward is the share of its tokens
that are TARGET. Run: python grpo_loop.py [steps]
"""

import sys

import torch

import wapo
import wapo.torch

V, PROMPTS, T, G, TARGET = 8, 4, 4, 8, 3


class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(PROMPTS * T, 16)
        self.head = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(16, V))

    def forward(self, prompts):  # (N) → (N, T, V)
        ids = prompts[:, None] * T + torch.arange(T)
        return self.head(self.embed(ids))


def main(steps=20, seed=0):
    torch.manual_seed(seed)
    policy = Policy()
    opt = torch.optim.Adam(policy.parameters(), lr=3e-2)
    cfg = wapo.Config(objective="wapo", clip_eps=0.2, max_seq_len=T)
    prompts = torch.arange(PROMPTS).repeat_interleave(G)  # (N); a group per prompt
    mask = torch.ones(PROMPTS * G, T, dtype=torch.bool)
    history = []
    for step in range(steps):
        # Rollout (TRL: generate, score, keep the behaviour log-probs).
        with torch.no_grad():
            logits = policy(prompts)
            tokens = torch.distributions.Categorical(logits=logits).sample()  # (N, T)
            old = logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
            rewards = (tokens == TARGET).float().mean(-1)  # (N)
        # Loss: the objective replaces the trainer's own.
        logprobs = policy(prompts).log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
        loss, out = wapo.torch.objective_with_output(cfg, logprobs, old, rewards, prompts, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(rewards.mean().item())
        if step % 5 == 0 or step == steps - 1:
            print(f"step {step:2d}  reward {history[-1]:.3f}  loss {loss.item():+.5f}  "
                  f"clipped {out.diagnostics['objective/clipped_fraction']:.3f}")
    return history


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
