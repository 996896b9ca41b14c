"""Train the bundled model's U-Nets on a GPU: PyTorch with the official network code
(ConditionalUNet of the official train/structure and train/texture folders), and this project's
recipe, which the project's own trainer (strdiffusion train --prediction x0 [--fill telea]) runs on
a CPU:

* 'x0' prediction: the network's output r is a residual on the SDE mean, x0_hat = mu + r; loss the
  official masked L1 (hole weight 10) of x0_hat against the clean x0, levels t uniform on 2..T;
* structure SDE: x0 = gray, mu = Canny edges * mask (official image_to_edge, sigma 3);
* texture SDE: x0 = RGB, mu = RGB * mask + Telea fill * (1 - mask) (16-bit per channel, as
  src/sde/fill.ts does it), guided by S = the structure SDE's posterior mean at the same level;
* the SDE tables (exp(-theta_bar dt), sigma_bar, posterior coefficients A, B) and the masks come
  from this project (scripts/gpu-train/prepare.ts), so nothing of the recipe is re-derived here.

  python3 train_x0.py --which structure|texture --official DIR --data DIR --prep DIR
      --init FILE.safetensors --out DIR [--seconds 420] [--batch 64] [--lr 5e-4] [--workers 7]
  python3 train_x0.py --check --official DIR --prep DIR      (CPU: reproduce prep/check/)

Weights are read and written as safetensors with the official state_dict keys (no extra
package needed); the EMA is saved with its spectral-norm vectors refitted to the averaged weights.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

SIZE = 64


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from safetensors_f32 import read_safetensors, write_safetensors  # noqa: E402


# ---------------------------------------------------------------- official code
def official_net(root, which, nf=8):
    import torch.utils.cpp_extension as cpp
    cpp.load = lambda *a, **k: None  # the StyleGAN2 CUDA ops: the U-Nets never use them
    sys.path.insert(0, os.path.join(root, "train", which, "config", "inpainting"))
    import models.modules.DenoisingUNet_arch as M
    c = 1 if which == "structure" else 3
    return M.ConditionalUNet(in_nc=c, out_nc=c, nf=nf, depth=4)


def image_to_edge_fn(root, which):
    sys.path.insert(0, os.path.join(root, "train", which, "config", "inpainting"))
    from data.canny import image_to_edge
    return image_to_edge


# ---------------------------------------------------------------- recipe pieces
def telea_mu(x, m):
    """mu = x*m + F*(1-m), F = Telea of the known pixels, channel by channel on 16 bits (src/sde/fill.ts)."""
    import cv2
    known = m >= 0.5
    out = (x * m).astype(np.float32)
    if known.all() or not known.any():
        return out
    hole = np.where(known, 0, 255).astype(np.uint8)
    F = np.zeros_like(x)
    for c in range(x.shape[0]):
        v = x[c][known]
        lo, hi = float(v.min()), float(v.max())
        if not hi > lo:
            F[c][~known] = np.float32(lo)
            continue
        s16 = np.where(known, np.floor((x[c].astype(np.float64) - lo) * (65535 / (hi - lo)) + 0.5), 0).astype(np.uint16)
        d = cv2.inpaint(s16, hole, 3, cv2.INPAINT_TELEA)
        F[c][~known] = np.clip(lo + d[~known].astype(np.float64) * ((hi - lo) / 65535), lo, hi).astype(np.float32)
    return (out + F * (1 - m)).astype(np.float32)


def matching_loss(torch, pred, target, mask):
    om = 1 - mask
    lossm = (pred * om - target * om).abs()
    lossu = (pred * mask - target * mask).abs()
    return (lossu + lossm * 10).mean()


def load_masks(prep, n_max=None):
    bits = np.fromfile(os.path.join(prep, "masks.bin"), dtype=np.uint8)
    m = np.unpackbits(bits, bitorder="little").reshape(-1, SIZE, SIZE).astype(np.float32)
    return m if n_max is None else m[:n_max]


class Tables:
    def __init__(self, torch, prep, device):
        t = json.load(open(os.path.join(prep, "tables.json")))
        self.T = t["T"]
        f = lambda k: torch.tensor(t[k], dtype=torch.float32, device=device).view(-1, 1, 1, 1)
        self.mf, self.sb, self.A, self.B = f("meanFactor"), f("sigmaBar"), f("A"), f("B")

    def state(self, x0, mu, t, z):
        return mu + (x0 - mu) * self.mf[t] + z * self.sb[t]

    def posterior_mean(self, xt, x0, mu, t):
        return self.A[t] * (xt - mu) + self.B[t] * (x0 - mu) + mu


def run_net(net, which, state, mu, t, S=None):
    out = net(state, mu, t) if which == "structure" else net(state, mu, t, S)
    return out[0] if isinstance(out, tuple) else out


# ---------------------------------------------------------------- data
class Crops:
    """Random 64x64 crops (official flips/transposes), official gray + Canny, a random mask of the
    pool (random dihedral transform) and, for the texture net, the Telea-filled mean."""

    def __init__(self, files, masks, which, edge_fn):
        self.files, self.masks, self.which, self.edge_fn = files, masks, which, edge_fn
        self.cache = {}

    def image(self, i):
        if i not in self.cache:
            import cv2
            im = cv2.imread(self.files[i], cv2.IMREAD_COLOR)
            self.cache[i] = np.ascontiguousarray(im[:, :, ::-1])
        return self.cache[i]

    def sample(self, rng):
        import torch
        im = self.image(int(rng.integers(len(self.files))))
        H, W = im.shape[:2]
        y, x = int(rng.integers(H - SIZE + 1)), int(rng.integers(W - SIZE + 1))
        c = im[y:y + SIZE, x:x + SIZE]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        if rng.random() < 0.5:
            c = c[::-1]
        if rng.random() < 0.5:
            c = c.transpose(1, 0, 2)
        GT = torch.from_numpy(np.ascontiguousarray(c).astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
        edge, gray = self.edge_fn(GT, sigma=3.0)
        m = self.masks[int(rng.integers(len(self.masks)))]
        k = int(rng.integers(8))
        m = np.rot90(m, k % 4)
        if k >= 4:
            m = m[:, ::-1]
        m = np.ascontiguousarray(m)
        out = {"GT": GT, "gray": gray.float(), "edge": edge.float(), "mask": torch.from_numpy(m)[None]}
        if self.which == "texture":
            out["mu"] = torch.from_numpy(telea_mu(GT.numpy(), m))
        return out


def make_loader(torch, crops, batch, workers, seed):
    class DS(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid = info.id if info else 0
            rng = np.random.default_rng([seed, wid])
            while True:
                yield crops.sample(rng)

    kw = dict(num_workers=workers, pin_memory=True)
    if workers > 0:
        # fork: the dataset object (images, mask pool) is shared copy-on-write, nothing is pickled
        kw.update(persistent_workers=True, prefetch_factor=8, multiprocessing_context="fork", worker_init_fn=_worker_init)
    return torch.utils.data.DataLoader(DS(), batch_size=batch, **kw)


def _worker_init(_):
    import cv2
    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


# ---------------------------------------------------------------- EMA and spectral norm
def refit_uv(W, u, iters=30):
    Wm = W.reshape(W.shape[0], -1).astype(np.float64)
    u = u.astype(np.float64)
    for _ in range(iters):
        v = Wm.T @ u
        v /= max(np.linalg.norm(v), 1e-12)
        u = Wm @ v
        u /= max(np.linalg.norm(u), 1e-12)
    return u.astype(np.float32), v.astype(np.float32)


def state_dict_np(net, params=None):
    sd = {k: v.detach().float().cpu().numpy().copy() for k, v in net.state_dict().items()}
    if params is not None:
        for k, v in params.items():
            sd[k] = v.detach().float().cpu().numpy().copy()
        for k in list(sd):
            if k.endswith(".weight_u"):
                p = k[: -len(".weight_u")]
                sd[k], sd[p + ".weight_v"] = refit_uv(sd[p + ".weight_orig"], sd[k])
    return sd


# ---------------------------------------------------------------- modes
def check(a):
    """Reproduce the project's check case on CPU: data (gray, edge, Telea mean) and, per U-Net, the
    loss and gradients of the project's trainer for the same prepared inputs and weights."""
    import torch
    d = os.path.join(a.prep, "check")
    ld = lambda n: np.load(os.path.join(d, n + ".npy"))
    ok = True
    for which in ("structure", "texture"):
        if not os.path.exists(os.path.join(d, f"{which}_meta.json")):
            continue
        meta = json.load(open(os.path.join(d, f"{which}_meta.json")))
        net = official_net(a.official, which)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in read_safetensors(meta["weights"]).items()}, strict=True)
        net.train()
        st, mu, clean = [torch.from_numpy(ld(f"{which}_{n}")) for n in ("state", "mu", "clean")]
        mask = torch.from_numpy(ld("mask"))
        S = torch.from_numpy(ld(f"{which}_S")) if which == "texture" else None
        t = torch.tensor(meta["t"], dtype=torch.int64)
        r = run_net(net, which, st, mu, t, S)
        loss = matching_loss(torch, mu + r, clean, mask)
        loss.backward()
        worst = 0.0
        for k, p in net.named_parameters():
            g = ld(f"{which}_grad__{k}")
            pg = p.grad.numpy()
            worst = max(worst, float(np.abs(pg - g).max() / max(np.abs(g).max(), 1e-12)))
        print(f"{which}: loss ours(TS) {meta['loss']:.7f} official-net {loss.item():.7f}; worst grad rel diff {worst:.2e}")
        ok &= abs(meta["loss"] - loss.item()) < 1e-4 * abs(meta["loss"]) and worst < 1e-2
        sys.path.pop(0)
        for m in [m for m in sys.modules if m == "models" or m.startswith("models.") or m == "data" or m.startswith("data.")]:
            del sys.modules[m]
    # SDE tables and formulas
    tab = Tables(torch, a.prep, torch.device("cpu"))
    st = json.load(open(os.path.join(d, "sde_meta.json")))
    t = torch.tensor(st["t"], dtype=torch.int64)
    x0, mu, z = (torch.from_numpy(ld(f"sde_{n}")) for n in ("x0", "mu", "z"))
    xt = tab.state(x0, mu, t, z)
    sd1 = float((xt - torch.from_numpy(ld("sde_state"))).abs().max())
    sd2 = float((tab.posterior_mean(xt, x0, mu, t) - torch.from_numpy(ld("sde_posterior"))).abs().max())
    print(f"sde: state max diff {sd1:.2e}, posterior mean max diff {sd2:.2e}")
    ok &= sd1 < 1e-5 and sd2 < 1e-5
    # data
    edge_fn = image_to_edge_fn(a.official, "texture")
    GT, gray, edge, mask, mu = ld("GT"), ld("gray"), ld("edge"), ld("mask"), ld("mu_telea")
    gd = ed = md = 0.0
    for b in range(GT.shape[0]):
        e, g = edge_fn(torch.from_numpy(GT[b]), sigma=3.0)
        gd = max(gd, float(np.abs(g.float().numpy() - gray[b]).max()))
        ed = max(ed, float(np.abs(e.float().numpy() - edge[b]).mean()))
        md = max(md, float(np.abs(telea_mu(GT[b], mask[b, 0]) - mu[b]).max()))
    print(f"data: gray max diff {gd:.2e}, edge pixels differing {ed:.4f}, Telea mean max diff {md:.2e}")
    ok &= gd < 1e-6 and ed < 0.01 and md < 0.02
    print("CHECK", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def train(a):
    import torch
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(a.seed)
    net = official_net(a.official, a.which).to(dev)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in read_safetensors(a.init).items()}, strict=True)
    net.train()
    edge_fn = image_to_edge_fn(a.official, a.which)
    files = sorted(os.path.join(a.data, f) for f in os.listdir(a.data) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    crops = Crops(files, load_masks(a.prep), a.which, edge_fn)
    loader = iter(make_loader(torch, crops, a.batch, a.workers, a.seed))
    tab = Tables(torch, a.prep, dev)
    params = dict(net.named_parameters())
    ema = {k: p.detach().clone() for k, p in params.items()}
    opt = torch.optim.Adam(params.values(), lr=a.lr, betas=(0.9, 0.99))
    os.makedirs(a.out, exist_ok=True)
    log = open(os.path.join(a.out, f"{a.which}_log.jsonl"), "w")
    t0 = time.time()
    it, smooth = 0, None
    while True:
        el = time.time() - t0
        if el > a.seconds or (a.steps and it >= a.steps):
            break
        frac = min(1.0, el / a.seconds)
        lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))  # cosine to a tenth
        for g in opt.param_groups:
            g["lr"] = lr
        bt = next(loader)
        bt = {k: v.to(dev, non_blocking=True) for k, v in bt.items()}
        B = bt["GT"].shape[0]
        t = torch.randint(2, tab.T + 1, (B,), device=dev)
        m = bt["mask"]
        muS = bt["edge"] * m
        if a.which == "structure":
            x0, mu, S = bt["gray"], muS, None
        else:
            zS = torch.randn_like(bt["gray"])
            S = tab.posterior_mean(tab.state(bt["gray"], muS, t, zS), bt["gray"], muS, t)
            x0, mu = bt["GT"], bt["mu"]
        state = tab.state(x0, mu, t, torch.randn_like(x0))
        r = run_net(net, a.which, state, mu, t, S)
        loss = matching_loss(torch, mu + r, x0, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for k, p in params.items():
                ema[k].mul_(a.ema).add_(p.detach(), alpha=1 - a.ema)
        it += 1
        if it % 100 == 0:
            lv = loss.item()
            smooth = lv if smooth is None else 0.98 * smooth + 0.02 * lv
            log.write(json.dumps({"it": it, "s": round(time.time() - t0, 1), "loss": lv, "smooth": smooth, "lr": lr}) + "\n")
            log.flush()
    el = time.time() - t0
    if a.save_last:
        write_safetensors(os.path.join(a.out, f"{a.which}_last.safetensors"), state_dict_np(net))
    write_safetensors(os.path.join(a.out, f"{a.which}_ema.safetensors"), state_dict_np(net, ema))
    summary = {"which": a.which, "iterations": it, "seconds": round(el, 1), "it_per_s": round(it / max(el, 1e-9), 2),
               "batch": a.batch, "lr": a.lr, "ema": a.ema, "device": str(dev),
               "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None, "torch": torch.__version__,
               "final_smooth_loss": smooth}
    print(json.dumps(summary))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--which", choices=["structure", "texture"])
    ap.add_argument("--official", required=True)
    ap.add_argument("--prep", required=True)
    ap.add_argument("--data")
    ap.add_argument("--init")
    ap.add_argument("--out")
    ap.add_argument("--seconds", type=float, default=420)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--workers", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save-last", action="store_true", help="also save the last iterate")
    a = ap.parse_args()
    sys.exit(check(a) if a.check else train(a))


if __name__ == "__main__":
    main()
