#!/usr/bin/env python3
"""An independent check of ewa's ViT export against timm's VisionTransformer, in pure Python.

Reads a .safetensors file, checks that its tensors are exactly the state dict that
timm.models.vision_transformer.VisionTransformer(**ARCH) would load with strict=True (names and
shapes, nothing missing, nothing extra), then runs timm's forward in eval mode on the images
of INPUT and prints the logits as JSON. Written from timm's module definitions (PatchEmbed:
conv with stride = patch, tokens row-major; cls token then pos_embed; pre-norm blocks with
LayerNorm eps 1e-6, fused qkv split as (3, heads, head_dim), softmax(q k^T / sqrt(head_dim)),
optional LayerScale ls1/ls2, MLP with exact GELU; final norm, or fc_norm after average
pooling; linear head), so it shares no code with the C++ implementation. No numpy/torch needed.

Usage: timm_vit_reference.py MODEL.safetensors ARCH.json INPUT.json
  ARCH.json:  timm constructor arguments: img_size, patch_size, in_chans, embed_dim, depth,
              num_heads, mlp_ratio, qkv_bias, class_token, global_pool (token|avg),
              init_values (null = no LayerScale), num_classes
  INPUT.json: {"shape": [B, C, H, W], "data": [B*C*H*W floats, row-major]}
Exit status 1 with a message on stderr when the state dict would not load.
"""
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} has dtype {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        count = (end - begin) // 4
        tensors[name] = (list(info["shape"]), list(struct.unpack(f"<{count}f", data[begin:end])))
    return tensors


def expected_state_dict(a):
    """Names and shapes of timm's VisionTransformer(**a).state_dict()."""
    d, p, c = a["embed_dim"], a["patch_size"], a["in_chans"]
    hidden = int(d * a["mlp_ratio"])
    prefix = 1 if a["class_token"] else 0
    n = (a["img_size"] // p) ** 2
    sd = {"patch_embed.proj.weight": [d, c, p, p], "patch_embed.proj.bias": [d], "pos_embed": [1, n + prefix, d]}
    if a["class_token"]:
        sd["cls_token"] = [1, 1, d]
    for i in range(a["depth"]):
        b = f"blocks.{i}."
        sd.update({b + "norm1.weight": [d], b + "norm1.bias": [d], b + "attn.qkv.weight": [3 * d, d],
                   b + "attn.proj.weight": [d, d], b + "attn.proj.bias": [d], b + "norm2.weight": [d],
                   b + "norm2.bias": [d], b + "mlp.fc1.weight": [hidden, d], b + "mlp.fc1.bias": [hidden],
                   b + "mlp.fc2.weight": [d, hidden], b + "mlp.fc2.bias": [d]})
        if a["qkv_bias"]:
            sd[b + "attn.qkv.bias"] = [3 * d]
        if a["init_values"]:
            sd[b + "ls1.gamma"] = [d]
            sd[b + "ls2.gamma"] = [d]
    norm = "fc_norm" if a["global_pool"] == "avg" else "norm"
    sd[norm + ".weight"] = [d]
    sd[norm + ".bias"] = [d]
    sd["head.weight"] = [a["num_classes"], d]
    sd["head.bias"] = [a["num_classes"]]
    return sd


def linear(rows, w, b, n_out):
    n_in = len(rows[0])
    out = []
    for x in rows:
        out.append([sum(x[i] * w[o * n_in + i] for i in range(n_in)) + (b[o] if b else 0.0) for o in range(n_out)])
    return out


def layer_norm(rows, w, b, eps=1e-6):
    out = []
    for x in rows:
        mean = sum(x) / len(x)
        var = sum((v - mean) ** 2 for v in x) / len(x)
        inv = 1.0 / math.sqrt(var + eps)
        out.append([(v - mean) * inv * w[i] + b[i] for i, v in enumerate(x)])
    return out


def attention(rows, t, pre, heads):
    d = len(rows[0])
    hd = d // heads
    qkv = linear(rows, t[pre + "qkv.weight"][1], t.get(pre + "qkv.bias", (None, None))[1], 3 * d)
    out = [[0.0] * d for _ in rows]
    for h in range(heads):
        q = [r[h * hd:(h + 1) * hd] for r in qkv]
        k = [r[d + h * hd:d + (h + 1) * hd] for r in qkv]
        v = [r[2 * d + h * hd:2 * d + (h + 1) * hd] for r in qkv]
        for i, qi in enumerate(q):
            s = [sum(qi[j] * kk[j] for j in range(hd)) / math.sqrt(hd) for kk in k]
            m = max(s)
            e = [math.exp(x - m) for x in s]
            z = sum(e)
            for j in range(hd):
                out[i][h * hd + j] = sum(e[s_] / z * v[s_][j] for s_ in range(len(v)))
    return linear(out, t[pre + "proj.weight"][1], t[pre + "proj.bias"][1], d)


def forward(t, a, image):
    d, p, c, s = a["embed_dim"], a["patch_size"], a["in_chans"], a["img_size"]
    w, b = t["patch_embed.proj.weight"][1], t["patch_embed.proj.bias"][1]
    tokens = []
    for py in range(s // p):  # row-major over the patch grid (flatten(2).transpose(1, 2))
        for px in range(s // p):
            patch = [image[ch][py * p + ky][px * p + kx] for ch in range(c) for ky in range(p) for kx in range(p)]
            tokens.append([sum(patch[i] * w[o * c * p * p + i] for i in range(c * p * p)) + b[o] for o in range(d)])
    prefix = 1 if a["class_token"] else 0
    if prefix:
        tokens = [t["cls_token"][1][:d]] + tokens
    pos = t["pos_embed"][1]
    x = [[v + pos[i * d + j] for j, v in enumerate(row)] for i, row in enumerate(tokens)]
    hidden = int(d * a["mlp_ratio"])
    for i in range(a["depth"]):
        pre = f"blocks.{i}."
        y = attention(layer_norm(x, t[pre + "norm1.weight"][1], t[pre + "norm1.bias"][1]), t, pre + "attn.",
                      a["num_heads"])
        if a["init_values"]:
            y = [[v * t[pre + "ls1.gamma"][1][j] for j, v in enumerate(r)] for r in y]
        x = [[u + v for u, v in zip(r1, r2)] for r1, r2 in zip(x, y)]
        y = linear(layer_norm(x, t[pre + "norm2.weight"][1], t[pre + "norm2.bias"][1]), t[pre + "mlp.fc1.weight"][1],
                   t[pre + "mlp.fc1.bias"][1], hidden)
        y = [[0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in r] for r in y]
        y = linear(y, t[pre + "mlp.fc2.weight"][1], t[pre + "mlp.fc2.bias"][1], d)
        if a["init_values"]:
            y = [[v * t[pre + "ls2.gamma"][1][j] for j, v in enumerate(r)] for r in y]
        x = [[u + v for u, v in zip(r1, r2)] for r1, r2 in zip(x, y)]
    if a["global_pool"] == "avg":
        rest = x[prefix:]
        pooled = [[sum(r[j] for r in rest) / len(rest) for j in range(d)]]
        pooled = layer_norm(pooled, t["fc_norm.weight"][1], t["fc_norm.bias"][1])
    else:
        pooled = [layer_norm(x, t["norm.weight"][1], t["norm.bias"][1])[0]]
    return linear(pooled, t["head.weight"][1], t["head.bias"][1], a["num_classes"])[0]


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    tensors = read_safetensors(sys.argv[1])
    with open(sys.argv[2]) as f:
        arch = json.load(f)
    with open(sys.argv[3]) as f:
        inp = json.load(f)
    want = expected_state_dict(arch)
    missing = sorted(set(want) - set(tensors))
    unexpected = sorted(set(tensors) - set(want))
    shapes = sorted(k for k in want if k in tensors and tensors[k][0] != want[k])
    if missing or unexpected or shapes:
        sys.stderr.write(f"strict load fails: missing {missing}, unexpected {unexpected}, "
                         f"shape mismatch {[(k, tensors[k][0], want[k]) for k in shapes]}\n")
        return 1
    bsz, c, h, w = inp["shape"]
    data = inp["data"]
    logits = []
    for n in range(bsz):
        image = [[[data[((n * c + ch) * h + y) * w + x] for x in range(w)] for y in range(h)] for ch in range(c)]
        logits.append(forward(tensors, arch, image))
    print(json.dumps(logits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
