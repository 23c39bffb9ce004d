"""PPO's loss over an RLModule's stacked MLP as one autograd node, its gradient written out.

With RLlib's default settings a PPO iteration is ~940 minibatch updates of a
[256, 256] policy and value net on 128 rows. The arithmetic of one update
takes ~0.9 ms here; autograd's way of getting the gradient -- ~150 small
operations (the loss terms, their backward nodes, the log-softmax, the
clamps) at 3-10 us of dispatch each -- adds about as much again. This module
computes the same loss (``ppo.ppo_loss`` over ``RLModule.forward_train``)
and its gradient by hand: the layers forward in torch keeping each one's
output, the loss and its derivative with respect to the network's outputs in
numpy (on 128-row vectors a numpy op costs ~1 us, a torch op ~6), then one
matmul pair per layer back down with aten's activation-backward kernels. It
is an ``autograd.Function``, so ``loss.backward()``, gradient clipping, the
optimizer and a loss scaled by a learner's share work unchanged; tests check
its loss, metrics and gradients against autograd's. CPU learners only (numpy
reads the tensors in place); a GPU learner takes autograd's path.

The derivative of the clipped surrogate: ``min(A*r, A*clip(r))`` passes the
gradient ``A`` to ``r`` exactly where ``A*r <= A*clip(r)`` (inside the clip
range the two are equal and torch's ``minimum`` splits the gradient between
two paths that both carry it; outside it, only the unclipped side carries one).

Learners import this module (it imports torch; an algorithm's driver does not).
"""

from __future__ import annotations

import numpy as np
import torch

from skate.rllib.module import _HALF_LOG_2PI

_aten = torch.ops.aten

# activation -> (in place forward, backward from the gradient and the activation's output)
_ACTIVATIONS = {
    "tanh": (torch.Tensor.tanh_, _aten.tanh_backward),
    "relu": (torch.Tensor.relu_, lambda g, y: _aten.threshold_backward(g, y, 0.0)),
    "elu": (lambda h: torch.nn.functional.elu(h, inplace=True),
            lambda g, y: _aten.elu_backward(g, 1.0, 1.0, 1.0, True, y)),
    "linear": (None, None),
}


def supports(module) -> bool:
    """Whether ``module`` is the stock RLModule with a float32 stacked policy/value MLP
    on the CPU whose activation's derivative can be read from its output (not a custom
    class, a shared trunk, silu or a GPU)."""
    from skate.rllib.module import RLModule

    if type(module) is not RLModule or getattr(module, "net", None) is None:
        return False
    w = module.net.weights[0]
    return (module.activation in _ACTIVATIONS and w.device.type == "cpu"
            and w.dtype == torch.float32)


def ppo_stacked_loss(module, obs, actions, old_logp, advantages, value_targets, *,
                     clip_param, vf_clip_param, vf_loss_coeff, entropy_coeff, kl_coeff):
    """(total loss, metrics (policy_loss, vf_loss, entropy, mean_kl_loss, total_loss) as
    floats) of one minibatch, equal to ``ppo_loss`` over ``module.forward_train``. ``obs`` is a
    float32 tensor; the other four are numpy arrays of one length (discrete actions as
    integers). ``supports(module)`` must hold."""
    net = module.net
    settings = (float(clip_param), float(vf_clip_param), float(vf_loss_coeff),
                float(entropy_coeff), float(kl_coeff), module.activation, module.n_out)
    rows = (actions, old_logp, advantages, value_targets)
    log_std = None if module.discrete else module.log_std
    return _PPOStackedLoss.apply(obs, rows, log_std, settings, *net.weights, *net.biases)


def _categorical(dist: np.ndarray, actions: np.ndarray):
    """(log-probabilities of ``actions``, every action's log-probability) of the
    categorical with logits ``dist`` [B, n]. (Along-axis reductions cost ~9 us each in
    numpy at this size, elementwise ops ~1: two actions take a pairwise logaddexp.)"""
    n = dist.shape[1]
    if n == 2:
        lse = np.logaddexp(dist[:, 0], dist[:, 1])
    elif n == 1:
        lse = dist[:, 0]
    else:
        lse = np.logaddexp.reduce(dist, axis=1)
    logp_all = dist - lse[:, None]
    return logp_all[np.arange(len(actions)), actions], logp_all


class _PPOStackedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, obs, rows, log_std, settings, *params):
        clip, vf_clip, vf_coeff, ent_coeff, kl_coeff, activation, n_out = settings
        actions, old_logp, adv, targets = rows
        L = len(params) // 2
        weights, biases = params[:L], params[L:]
        act = _ACTIVATIONS[activation][0]
        h = obs.unsqueeze(0).expand(weights[0].shape[0], -1, -1)
        inputs = [obs]  # each layer's input (the first one's unstacked)
        for i in range(L):
            h = torch.baddbmm(biases[i], h, weights[i])
            if i < L - 1:
                if act is not None:
                    h = act(h)
                inputs.append(h)
        out = h.numpy()  # a view: the last layer's outputs [2, B, max(n_out, 1)]
        dist, v = out[0, :, :n_out], out[1, :, 0]
        inv_b = 1.0 / obs.shape[0]
        if log_std is None:
            logp, logp_all = _categorical(dist, actions)
            probs = np.exp(logp_all)
            plogp = probs * logp_all
            mean_entropy = -float(plogp.sum()) * inv_b
            extra = (probs, logp_all, plogp)
        else:  # Gaussian with a state-independent log std
            ls = log_std.detach().numpy()
            inv_std = np.exp(-ls)
            z = (actions - dist) * inv_std
            logp = (-0.5 * z * z - ls - _HALF_LOG_2PI).sum(1)
            mean_entropy = float((0.5 + _HALF_LOG_2PI + ls).sum())
            extra = (z, inv_std)
        ratio = np.exp(logp - old_logp)
        unclipped = adv * ratio
        clipped = adv * np.minimum(np.maximum(ratio, 1 - clip), 1 + clip)
        keep = unclipped <= clipped  # where the surrogate passes a gradient to the ratio
        diff = v - targets
        sq = diff * diff
        policy_loss = -float(np.minimum(unclipped, clipped).sum()) * inv_b
        vf_loss = float(np.minimum(sq, vf_clip).sum()) * inv_b
        kl = float((old_logp - logp).sum()) * inv_b
        total = policy_loss + vf_coeff * vf_loss - ent_coeff * mean_entropy + kl_coeff * kl
        ctx.settings, ctx.discrete = settings, log_std is None
        ctx.numpy = (actions, unclipped, keep, diff, sq, *extra)
        ctx.save_for_backward(*inputs, *weights, h)
        # the metrics as plain floats (a tensor of them costs ~20 us to build)
        return torch.tensor(total, dtype=h.dtype), (policy_loss, vf_loss, mean_entropy, kl,
                                                    total)

    @staticmethod
    def backward(ctx, grad, _metrics_grad):
        clip, vf_clip, vf_coeff, ent_coeff, kl_coeff, activation, n_out = ctx.settings
        saved = ctx.saved_tensors
        L = (len(saved) - 1) // 2
        inputs, weights, out = saved[:L], saved[L:2 * L], saved[-1]
        actions, unclipped, keep, diff, sq, *extra = ctx.numpy
        g_total = float(grad)
        s = g_total / unclipped.shape[0]  # d total / d (a per-row term of a batch mean)
        # d total / d logp, per row: the surrogate's and the KL estimate's
        glogp = (unclipped * keep + kl_coeff) * -s
        g = torch.zeros_like(out)  # d total / d the last layer's outputs
        gn = g.numpy()
        g_log_std = None
        if ctx.discrete:
            probs, logp_all, plogp = extra
            gdist = probs * -glogp[:, None]  # d logp / d logits = onehot - p
            gdist[np.arange(len(actions)), actions] += glogp
            if ent_coeff:  # d entropy / d logits = -p (log p + entropy)
                entropy = -plogp.sum(1)
                gdist += probs * (logp_all + entropy[:, None]) * (ent_coeff * s)
            gn[0, :, :n_out] = gdist
        else:
            z, inv_std = extra
            gz = glogp[:, None]
            gn[0, :, :n_out] = gz * z * inv_std
            g_log_std = (gz * (z * z - 1)).sum(0) - ent_coeff * g_total
            g_log_std = torch.from_numpy(g_log_std.astype(np.float32))
        gn[1, :, 0] = diff * (sq <= vf_clip) * (2 * vf_coeff * s)
        backward = _ACTIVATIONS[activation][1]
        gw, gb = [None] * L, [None] * L
        for i in range(L - 1, -1, -1):
            x = inputs[i]
            gw[i] = torch.bmm(x.transpose(1, 2), g) if i else torch.matmul(x.T, g)
            gb[i] = g.sum(1, keepdim=True)
            if i:
                g = torch.bmm(g, weights[i].transpose(1, 2))
                if backward is not None:
                    g = backward(g, x)
        return (None, None, g_log_std, None, *gw, *gb)
