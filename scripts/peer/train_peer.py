"""PyTorch's side of the training-step figures of scripts/bench.ts: the same bench LM.

The configuration c is scripts/bench/train-lm.ts's CONFIG ({vocab, d_model, layers, heads, ff,
context, batch, dropout, lr, clip}). The model mirrors that file's BenchLM: token embedding +
sinusoidal positions, post-LayerNorm blocks (fused qkv projection, attention, output
projection, ReLU feed-forward, dropout), an untied output layer with the full softmax,
cross-entropy, global-norm clipping and AdamW.
'dot' uses PyTorch's fused scaled_dot_product_attention (causal); 'fourier' is the paper's
materialised Fourier attention (K = prod_d sinc(R_d (q_id - k_jd))^4 over [B,H,N,N,D], causal,
h = K v / (sum_j K + eps), R per feature initialised to 2).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from attention_peer import fourier_materialised



class Attention(nn.Module):
    def __init__(self, d, heads, kind):
        super().__init__()
        self.heads, self.kind = heads, kind
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        if kind == "fourier":
            self.R = nn.Parameter(torch.full((d // heads,), 2.0))

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if self.kind == "dot":
            h = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            h = fourier_materialised(q, k, v, self.R, causal=True)
        return self.out(h.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, d, heads, ff, dropout, kind):
        super().__init__()
        self.attn = Attention(d, heads, kind)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.fc2(self.drop(F.relu(self.fc1(x))))))


def sinusoids(n, d):
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class LM(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        d = c["d_model"]
        self.embed = nn.Embedding(c["vocab"], d)
        self.register_buffer("pos", sinusoids(c["context"], d))
        self.drop = nn.Dropout(c["dropout"])
        self.blocks = nn.ModuleList(Block(d, c["heads"], c["ff"], c["dropout"], kind) for _ in range(c["layers"]))
        self.head = nn.Linear(d, c["vocab"])

    def forward(self, ids):
        x = self.drop(self.embed(ids) + self.pos[: ids.shape[1]])
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def train_step(c, kind, device):
    """A function running one training step (forward, loss, backward, clipping, AdamW) of the
    model of `kind` on one fixed batch; returns the loss (reading it back synchronises)."""
    torch.manual_seed(0)
    model = LM(c, kind).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, c["vocab"], (c["batch"], c["context"] + 1), generator=g).to(device)
    inputs, targets = data[:, :-1], data[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c["clip"])
        opt.step()
        return loss.item()

    return step
