#!/usr/bin/python3
"""The peer to beat in `npm run bench -- train`: the same forecaster, trained by Debian's
python3-torch (1.13, ICOS-FL's engine) on the same machine. Prints one JSON line.

Same shapes as agent/trainer/model.ts: 'mlp' = linear path over the flattened lookback plus one
ReLU hidden layer and a head (no output bias), 'linear', or 'lstm' (LSTM + dense head); with
--independent every channel is one row of a univariate model (channel_independent = true).
A "sample" is one window (all channels), as in the tfjs bench.
"""
import argparse, json, time

p = argparse.ArgumentParser()
p.add_argument('--model', default='mlp', choices=['mlp', 'linear', 'lstm'])
p.add_argument('--lookback', type=int, default=30)
p.add_argument('--horizon', type=int, default=5)
p.add_argument('--channels', type=int, default=2)
p.add_argument('--hidden', type=int, default=64)
p.add_argument('--batch', type=int, default=256)
p.add_argument('--windows', type=int, default=4000)
p.add_argument('--epochs', type=int, default=3)
p.add_argument('--lr', type=float, default=0.002)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--independent', action='store_true')
a = p.parse_args()

try:
    import torch
except ImportError as e:
    print(json.dumps({'samples_per_s': None, 'reason': f'python3-torch not importable: {e} (apt-get install python3-torch)'}))
    raise SystemExit(0)

torch.manual_seed(42)
torch.set_num_threads(a.threads)
C = 1 if a.independent else a.channels
rows = a.windows * (a.channels if a.independent else 1)
x = torch.randn(rows, a.lookback * C) if a.model != 'lstm' else torch.randn(rows, a.lookback, C)
y = torch.randn(rows, a.horizon * C) * 0.1


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        out = a.horizon * C
        if a.model == 'lstm':
            self.lstm = torch.nn.LSTM(C, a.hidden, batch_first=True)
            self.head = torch.nn.Linear(a.hidden, out, bias=False)
        else:
            self.linear = torch.nn.Linear(a.lookback * C, out, bias=False)
            if a.model == 'mlp':
                self.hidden = torch.nn.Linear(a.lookback * C, a.hidden)
                self.head = torch.nn.Linear(a.hidden, out, bias=False)

    def forward(self, v):
        if a.model == 'lstm':
            _, (h, _) = self.lstm(v)
            return self.head(h[-1])
        o = self.linear(v)
        return o + self.head(torch.relu(self.hidden(v))) if a.model == 'mlp' else o


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=a.lr)
loss_fn = torch.nn.MSELoss()


def epoch():
    perm = torch.randperm(rows)
    total = 0.0
    for i in range(0, rows, a.batch):
        idx = perm[i:i + a.batch]
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / rows


epoch()  # warm-up (allocations, thread pool)
# Best of 3 timed calls of a.epochs epochs, like train.bench.ts; the loss is the first call's.
secs = float('inf')
for call in range(3):
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        loss = epoch()
    secs = min(secs, time.perf_counter() - t0)
    if call == 0:
        last = loss
import re
m = re.search(r'BLAS_INFO=([^,\s]+)', torch.__config__.show())
blas = m.group(1) if m else 'unknown'
print(json.dumps({'samples_per_s': a.windows * a.epochs / secs, 'final_loss': last, 'torch': torch.__version__,
                  'threads': a.threads, 'blas': blas}))
