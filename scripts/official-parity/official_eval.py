"""Evaluate texture weights (ours or the official trainer's) with the OFFICIAL code, as
tools/official/official_memorize.py does after training: load them into the official
train/texture ConditionalUNet (eval mode), run the texture-only reverse SDE from
noise_state(GT*m) with the oracle guide drawn as in training (S_sde.generate_random_states_texture
+ reverse_optimum_step at each t), and print the hole PSNR (mean over --seeds), plus the mean-fill
PSNR and the x0-hat hole MAE on true forward states at t = 10..50.

usage: STRD_OFFICIAL=... PYTHONPATH=<einops> /usr/bin/python3 official_eval.py RUN_DIR WEIGHTS [WEIGHTS...]
   RUN_DIR: a folder of official_multistep.py (meta.json, GT/gray/edge/mask.npy: sample 0 is used)
   WEIGHTS: .pth (torch.save / official checkpoint) or .safetensors (this project's run folders)
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def read_safetensors(path):
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
    from safetensors_f32 import read_safetensors as read_np
    return {k: torch.from_numpy(v) for k, v in read_np(path).items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--official", default=None)
    ap.add_argument("--tools", default=None)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True   # no __pycache__ in the repository
    from official_multistep import load_strd_env
    strd_env = load_strd_env(a.tools)
    root = strd_env.official_root(a.official)
    strd_env.setup(root, "train/texture", threads=a.threads)
    import torch
    import utils as util
    import str_utils as str_util
    from models import modules as M

    meta = json.load(open(os.path.join(a.run, "meta.json")))
    assert meta["which"] == "texture"
    T = meta["T"]
    cpu = torch.device("cpu")
    mk = lambda mod: mod.IRSDE(max_sigma=30, T=T, schedule="cosine", eps=0.005, device=cpu)
    ld = lambda n: torch.from_numpy(np.load(os.path.join(a.run, n + ".npy")))[:1]
    y0, x0g, x0l, mm = ld("GT"), ld("gray"), ld("edge"), ld("mask")
    h = mm[0, 0] < 0.5
    gt = (y0 * 255).round()[0]
    mean_fill = y0[0][:, ~h].mean(dim=1)
    mse_mf = ((((mean_fill[:, None] * 255).round()) - gt[:, h]) ** 2).mean().item()
    print("mean-fill hole PSNR %.2f dB" % (10 * np.log10(255 ** 2 / mse_mf)))
    for wpath in a.weights:
        sd = read_safetensors(wpath) if wpath.endswith(".safetensors") else torch.load(wpath, map_location="cpu")
        sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
        net = M.ConditionalUNet(in_nc=3, out_nc=3, nf=meta["net"]["nf"], depth=meta["net"]["depth"])
        net.load_state_dict(sd, strict=True)
        net.eval()
        sde, S_sde = mk(util), mk(str_util)
        sde.set_model(net)

        def guide(t):
            tt = torch.tensor([t])
            _, xs = S_sde.generate_random_states_texture(x0=x0g, mu=x0l * mm, timesteps=tt)
            return S_sde.reverse_optimum_step(xs, x0g, tt.reshape(1, 1, 1, 1))
        psnrs, maes = [], {}
        with torch.no_grad():
            sde.set_mu(y0 * mm)
            for seed in [int(s) for s in a.seeds.split(",")]:
                torch.manual_seed(seed)
                for t in (10, 20, 30, 40, 50):
                    tt = torch.tensor([t]).reshape(1, 1, 1, 1)
                    z = torch.randn_like(y0)
                    yt = sde.mu_bar(y0, tt) + sde.sigma_bar(tt) * z
                    eps, _ = sde.noise_fn(yt, torch.tensor([t]), guide(t))
                    x0hat = sde.mu + (yt - sde.mu - sde.sigma_bar(tt) * eps) / sde.weights(tt)
                    maes.setdefault(t, []).append(float((x0hat[0][:, h] - y0[0][:, h]).abs().mean()))
                y = sde.noise_state(y0 * mm)
                for t in range(T, 0, -1):
                    eps, _ = sde.noise_fn(y, torch.tensor([t]), guide(t))
                    y = sde.reverse_sde_step(y, sde.get_score_from_noise(eps, t), t)
                out = (y.clamp(0, 1) * 255).round()[0]
                mse = ((out[:, h] - gt[:, h]) ** 2).mean().item()
                psnrs.append(10 * np.log10(255 ** 2 / mse))
        print("%s: hole PSNR %.2f dB (seeds: %s); x0hat hole MAE t=10..50: %s" % (
            wpath, float(np.mean(psnrs)), " ".join("%.2f" % p for p in psnrs),
            " ".join("%.3f" % np.mean(maes[t]) for t in sorted(maes))))


if __name__ == "__main__":
    main()
