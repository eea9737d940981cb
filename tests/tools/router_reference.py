#!/usr/bin/python3
"""Independent NumPy reference of the learned routers (tests/core/test_router_reference.cpp).

Routes a small fixed input (N = 8 tokens = 2 images x 4 tokens, D = E = 4, gate weight = I so
the logits are the tokens) in eval mode and prints, for every router, the expected dispatch
index [E, C] and combine weights [E, C] (Soft MoE: dispatch / combine [B, T, E, S]) as C++
initialisers, plus the training-mode importance and z losses on the clean logits. The
algorithms follow google-research/vmoe (V-MoE top-k with capacity and batch-prioritized routing,
Sinkhorn with epsilon 1 / 20 iterations, the k-sparse semi-dual solved with Adam, Soft MoE).
Run: /usr/bin/python3 tests/tools/router_reference.py
"""
import math

import numpy as np

N, E, B, T = 8, 4, 2, 4
X = np.array([[round(2.0 * math.sin(1.3 * i + 0.7 * j) + 0.3 * math.cos(2.1 * i * j), 3) for j in range(E)]
              for i in range(N)])


def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=axis, keepdims=True)


def logsumexp(z, axis):
    m = z.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def capacity(n, e, k, cf, multiple):
    c = max(1, math.ceil(k * n * cf / e))
    return (c + multiple - 1) // multiple * multiple


def token_choice_slots(experts, gates, cf, multiple, bpr):
    """experts, gates [N, k]: level by level, tokens in order (BPR: by top gate, descending)."""
    n, k = experts.shape
    cap = capacity(n, E, k, cf, multiple)
    order = sorted(range(n), key=lambda t: -gates[t, 0]) if bpr else list(range(n))
    index = -np.ones((E, cap), dtype=np.int64)
    weight = np.zeros((E, cap))
    fill = [0] * E
    for level in range(k):
        for t in order:
            e = experts[t, level]
            if fill[e] < cap:
                index[e, fill[e]] = t
                weight[e, fill[e]] = gates[t, level]
                fill[e] += 1
    return index, weight


def sinkhorn_log(scores, eps, iters, row, col):
    log_k = scores / eps
    u = np.zeros((scores.shape[0], 1))
    v = np.zeros((1, scores.shape[1]))
    for _ in range(iters):
        u = math.log(row) - logsumexp(log_k + v, 1)
        v = math.log(col) - logsumexp(log_k + u, 0)
    return log_k + u + v


def project_sparse_simplex(x, k):
    """x [n]: Euclidean projection onto the simplex restricted to the k largest entries."""
    top = np.argsort(-x, kind="stable")[:k]
    y = x[top]
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - 1.0
    rho = max(i + 1 for i in range(len(u)) if u[i] - css[i] / (i + 1) > 0)
    theta = css[rho - 1] / rho
    out = np.zeros_like(x)
    out[top] = np.maximum(y - theta, 0.0)
    return out


def sparse_plan(sim, k, gamma=1.0, iters=20, lr=1e-2, tol=1e-3):
    n, e = sim.shape
    b = n / e
    def plan(alpha):
        p = np.zeros_like(sim)
        for j in range(e):
            p[:, j] = b * project_sparse_simplex((alpha + sim[:, j]) / (gamma * b), k)
        return p
    alpha = np.zeros(n)
    m = np.zeros(n)
    v = np.zeros(n)
    for t in range(1, iters + 1):
        g = plan(alpha).sum(1) - 1.0
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        alpha = alpha - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        if np.linalg.norm(g) <= tol:
            break
    return plan(alpha)


def expert_choice(key, probs, cap, support_only=False):
    index = -np.ones((E, cap), dtype=np.int64)
    weight = np.zeros((E, cap))
    for e in range(E):
        top = np.argsort(-key[:, e], kind="stable")[:cap]
        for c, t in enumerate(top):
            if support_only and key[t, e] <= 0:
                continue
            index[e, c] = t
            weight[e, c] = probs[t, e]
    return index, weight


def emit(name, a):
    a = np.asarray(a)
    if a.dtype.kind == "i":
        flat = ", ".join(str(int(v)) for v in a.reshape(-1))
    else:
        flat = ", ".join(repr(float(v)) for v in a.reshape(-1))
    print(f"const std::vector<{'int64_t' if a.dtype.kind == 'i' else 'double'}> {name} = {{{flat}}};"
          f"  // shape {list(a.shape)}")


def main():
    probs = softmax(X, 1)
    emit("kX", X)
    # softmax_token_choice, k 2, capacity_factor 1, capacity_multiple 1, BPR
    experts = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    gates = np.take_along_axis(probs, experts, 1)
    i, w = token_choice_slots(experts, gates, 1.0, 1, True)
    emit("kTokenChoiceIndex", i)
    emit("kTokenChoiceWeight", w)
    # sinkhorn_token_choice, k 1, capacity_factor 1, multiple 1, no BPR, epsilon 1, 20 iterations
    lp = sinkhorn_log(X, 1.0, 20, 1.0, N / E)
    experts = np.argmax(lp, axis=1)[:, None]
    gates = np.take_along_axis(probs, experts, 1)
    i, w = token_choice_slots(experts, gates, 1.0, 1, False)
    emit("kSinkhornTokenChoiceIndex", i)
    emit("kSinkhornTokenChoiceWeight", w)
    # softmax_expert_choice, capacity_factor 1 -> C = 2
    i, w = expert_choice(probs, probs, capacity(N, E, 1, 1.0, 1))
    emit("kExpertChoiceIndex", i)
    emit("kExpertChoiceWeight", w)
    # sinkhorn_expert_choice, capacity_factor 1 -> C = 2, epsilon 1, 20 iterations
    i, w = expert_choice(sinkhorn_log(X, 1.0, 20, 1.0, N / E), probs, capacity(N, E, 1, 1.0, 1))
    emit("kSinkhornExpertChoiceIndex", i)
    emit("kSinkhornExpertChoiceWeight", w)
    # sparsity_constrained_expert_choice, capacity_factor 1.5 -> C = 3, gamma 1, 20 Adam steps
    cap = capacity(N, E, 1, 1.5, 1)
    plan = sparse_plan(probs, cap)
    emit("kSparsePlan", plan)
    i, w = expert_choice(plan, probs, cap, support_only=True)
    emit("kSparseExpertChoiceIndex", i)
    emit("kSparseExpertChoiceWeight", w)
    # soft_moe, 1 slot per expert, slots = fixed matrix [D, E], scale 1
    slots = np.array([[math.cos(0.9 * d + 1.7 * s) for s in range(E)] for d in range(E)])
    xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    pn = slots / np.linalg.norm(slots, axis=0, keepdims=True)
    lg = (xn @ pn).reshape(B, T, E)
    emit("kSoftSlots", slots)
    emit("kSoftDispatch", softmax(lg, 1))
    emit("kSoftCombine", softmax(lg, 2))
    # per_image, k 1, image token = token 0 of each image, dropless
    feats = X.reshape(B, T, E)[:, 0, :]
    pi = softmax(feats, 1)
    ex = np.argmax(pi, axis=1)
    ci = max(1, max(int((ex == e).sum()) for e in range(E)))
    index = -np.ones((E, ci * T), dtype=np.int64)
    weight = np.zeros((E, ci * T))
    fill = [0] * E
    for b in range(B):
        e = ex[b]
        for t in range(T):
            index[e, fill[e] * T + t] = b * T + t
            weight[e, fill[e] * T + t] = pi[b, e]
        fill[e] += 1
    emit("kPerImageIndex", index)
    emit("kPerImageWeight", weight)
    # training-mode losses on the clean logits (weights 1): importance CV^2 and z
    imp = probs.sum(0)
    emit("kImportanceLoss", [imp.var() / imp.mean() ** 2])
    emit("kZLoss", [float((logsumexp(X, 1) ** 2).mean())])


if __name__ == "__main__":
    main()
