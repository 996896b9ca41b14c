"""Multi-step training parity, official side: run the OFFICIAL training iteration
(`DenoisingModel.optimize_parameters`, train/<which>/config/inpainting) for N steps on one batch
(B copies of one crop and one hole, optional random flips/transposes per sample as in
tools/official/official_memorize.py) and record everything a replay needs:

  meta.json          config (which, nf, T, lr, B, H, W, steps, every, aug)
  init.pth           state_dict before step 1 (official constructor init, torch.manual_seed(seed))
  GT/gray/edge/mask.npy   the base batch [B,C,H,W]
  aug.npy            uint8 [steps,B,4] (hflip, vflip, transpose of GT/gray/edge [and of the mask with
                     --mask-aug with-image], mask hflip [--mask-aug independent]) per step and sample
  t.npy              int64 [steps,B] the levels torch.randint drew
  z.npy, zS.npy      float32 [steps,B,C,H,W] the torch.randn_like draws (zS: texture only)
  loss.npy           float32 [steps]
  ckpt_K.pth         state_dict after step K (incl. spectral-norm u/v) for K in the checkpoint list
  adam_K.pth         exp_avg.<name>, exp_avg_sq.<name> and step after step K

The draws are NOT injected: torch draws them and wrappers around torch.randint / torch.randn_like
record what they returned. Nothing of the official code is copied or edited.

usage: STRD_OFFICIAL=<extracted official repo> PYTHONPATH=<einops> \
  /usr/bin/python3 official_multistep.py --which texture --steps 200 --every 20 --out DIR \
      [--image IMG.png --hole HOLE.png] [--aug] [--T 50] [--lr 1e-3] [--size 32] [--batch 4]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def load_strd_env(official_tools):
    for d in [official_tools, os.path.join(HERE, "..", "..", "..", "shared", "tools", "official")]:
        if d and os.path.isfile(os.path.join(d, "strd_env.py")):
            sys.path.insert(0, os.path.abspath(d))
            import strd_env
            return strd_env
    raise SystemExit("cannot find strd_env.py (pass --tools <shared/tools/official>)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", default=None)
    ap.add_argument("--tools", default=None, help="folder with strd_env.py (default ../shared/tools/official)")
    ap.add_argument("--which", choices=["structure", "texture"], default="texture")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--T", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--nf", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image", default=None, help="RGB image (resized/cropped to size); default skimage coffee crop")
    ap.add_argument("--hole", default=None, help="hole mask (white = hole); default a centred square of size/3")
    ap.add_argument("--aug", action="store_true", help="random hflip/vflip/transpose per sample and step")
    ap.add_argument("--mask-aug", choices=["with-image", "independent"], default="with-image",
                    help="with --aug: the mask takes the image's flips (official_memorize.py AUG=1), or only its "
                         "own RandomHorizontalFlip as train.py's mask loader does (independent of the image)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--replay", default=None, help="inject the flips, t and noise recorded in this run folder "
                    "(with --perturb: how much float32 round-off alone makes two official runs drift apart)")
    ap.add_argument("--perturb", type=float, default=0.0, help="multiply every initial weight by (1 + perturb*N(0,1))")
    a = ap.parse_args()

    strd_env = load_strd_env(a.tools)
    root = strd_env.official_root(a.official)
    strd_env.setup(root, f"train/{a.which}", threads=a.threads)
    import torch
    import options as option
    import utils as util
    import str_utils as str_util
    from models import create_model
    from data.canny import image_to_edge
    from PIL import Image

    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    yml = os.path.join(strd_env.config_dir(root, f"train/{a.which}"), "options", "train", "ir-sde.yml")
    opt = option.parse(yml, is_train=True)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    opt = option.dict_to_nonedict(opt)
    opt["gpu_ids"] = None
    opt["dist"] = False
    opt["network_G"]["setting"]["nf"] = a.nf
    opt["sde"]["T"] = a.T
    opt["train"]["lr_G"] = a.lr
    model = create_model(opt)
    net = model.model.module
    T = a.T
    cpu = torch.device("cpu")
    mk = lambda mod: mod.IRSDE(max_sigma=opt["sde"]["max_sigma"], T=T, schedule=opt["sde"]["schedule"],
                               eps=opt["sde"]["eps"], device=cpu)
    sde = mk(util)
    sde.set_model(model.model)
    S_sde = mk(str_util)

    # ---- data
    S = a.size
    if a.image:
        im = Image.open(a.image).convert("RGB")
    else:
        import skimage.data
        im = Image.fromarray(skimage.data.coffee()[100:300, 200:400])
    if im.size != (S, S):
        im = im.resize((S, S), Image.BOX)
    img = np.asarray(im).astype(np.float32) / 255
    GT = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    e, g = image_to_edge(GT, sigma=3.0)
    if a.hole:
        hole = np.asarray(Image.open(a.hole).convert("L").resize((S, S), Image.NEAREST)) > 127
    else:
        hole = np.zeros((S, S), bool)
        q = S // 3
        hole[q:2 * q, q:2 * q] = True
    m1 = torch.from_numpy((~hole).astype(np.float32))[None, None]
    B = a.batch
    yg = GT[None].repeat(B, 1, 1, 1)
    xg = g.float()[None].repeat(B, 1, 1, 1)
    xl = e.float()[None].repeat(B, 1, 1, 1)
    m = m1.repeat(B, 1, 1, 1)
    for nm, v in (("GT", yg), ("gray", xg), ("edge", xl), ("mask", m)):
        np.save(os.path.join(a.out, f"{nm}.npy"), v.numpy().astype(np.float32))

    def aug(flags, *ts):
        outs = [list() for _ in ts]
        for b in range(B):
            hf, vf, rot = flags[b][:3]
            for k, t_ in enumerate(ts):
                x = t_[b]
                if hf: x = x.flip(-1)
                if vf: x = x.flip(-2)
                if rot: x = x.transpose(-1, -2)
                outs[k].append(x)
        return [torch.stack(o).contiguous() for o in outs]

    # ---- record the draws
    rec = {"t": [], "randn": []}
    orig_randint, orig_randn_like = torch.randint, torch.randn_like

    rp = None
    if a.replay:
        rp = {"t": np.load(os.path.join(a.replay, "t.npy")), "z": np.load(os.path.join(a.replay, "z.npy")),
              "aug": np.load(os.path.join(a.replay, "aug.npy")), "i": 0, "r": 0}
        if a.which == "texture":
            rp["zS"] = np.load(os.path.join(a.replay, "zS.npy"))
        a.mask_aug = json.load(open(os.path.join(a.replay, "meta.json"))).get("mask_aug", "with-image")

    def randint(*args, **kw):
        v = orig_randint(*args, **kw)
        if rp is not None:
            v = torch.from_numpy(rp["t"][rp["i"]].astype(np.int64)).reshape(v.shape)
        rec["t"].append(v.reshape(-1).numpy().copy())
        return v

    def randn_like(x, *args, **kw):
        v = orig_randn_like(x, *args, **kw)
        if rp is not None:
            v = torch.from_numpy((rp["z"] if rp["r"] == 0 else rp["zS"])[rp["i"]].copy()).reshape(v.shape)
            rp["r"] += 1
        rec["randn"].append(v.detach().numpy().astype(np.float32).copy())
        return v
    torch.randint, torch.randn_like = randint, randn_like

    if a.perturb:
        g = torch.Generator().manual_seed(a.seed + 1)
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.mul_(1 + a.perturb * torch.randn(p.shape, generator=g))
    torch.save(net.state_dict(), os.path.join(a.out, "init.pth"))
    ckpts = sorted(set([1, 2] + [k for k in range(a.every, a.steps + 1, a.every)] +
                       [k + 1 for k in range(a.every, a.steps, a.every)]))
    augs, ts, zs, zSs, losses = [], [], [], [], []
    t0 = time.time()
    step_wall, step_cpu = [], []   # the training step alone (states + optimize + lr), for the benchmark
    for i in range(1, a.steps + 1):
        flags = (np.random.rand(B, 4) < 0.5) if a.aug else np.zeros((B, 4), bool)
        if a.mask_aug == "with-image":
            flags[:, 3] = False
        else:
            flags[:, 3] = np.random.rand(B) < 0.5   # train.py: RandomHorizontalFlip of the mask only
        if rp is not None:
            flags = rp["aug"][i - 1].astype(bool)
            if flags.shape[1] == 3:
                flags = np.concatenate([flags, np.zeros((B, 1), bool)], 1)
            rp["i"], rp["r"] = i - 1, 0
        augs.append(flags.astype(np.uint8))
        ygA, xgA, xlA, mA = aug(flags, yg, xg, xl, m) if flags[:, :3].any() else (yg, xg, xl, m)
        if a.mask_aug == "independent":
            mA = torch.stack([m[b].flip(-1) if flags[b, 3] else m[b] for b in range(B)]).contiguous()
        n_t, n_r = len(rec["t"]), len(rec["randn"])
        w0, c0 = time.perf_counter(), time.process_time()
        if a.which == "structure":
            timesteps, states = sde.generate_random_states(x0=xgA, mu=xlA * mA)
            model.feed_data(states, xlA * mA, xgA, mA, S_sde, xgA, xlA)
        else:
            timesteps, states = sde.generate_random_states(x0=ygA, mu=ygA * mA)
            model.feed_data(states, ygA * mA, ygA, mA, S_sde, xgA, xlA)
        model.optimize_parameters(i, timesteps, sde)
        model.update_learning_rate(i, warmup_iter=opt["train"]["warmup_iter"])
        step_wall.append(time.perf_counter() - w0)
        step_cpu.append(time.process_time() - c0)
        draws = rec["randn"][n_r:]
        assert len(rec["t"]) == n_t + 1 and len(draws) == (1 if a.which == "structure" else 2), (len(rec["t"]) - n_t, len(draws))
        ts.append(rec["t"][-1])
        zs.append(draws[0])
        if a.which == "texture":
            zSs.append(draws[1])
        losses.append(model.log_dict["loss"])
        if i in ckpts:
            torch.save(net.state_dict(), os.path.join(a.out, f"ckpt_{i}.pth"))
            st = {}
            names = dict((id(p), n) for n, p in net.named_parameters())
            step = None
            for p, s in model.optimizer.state.items():
                n = names[id(p)]
                st[f"exp_avg.{n}"] = s["exp_avg"].detach().clone()
                st[f"exp_avg_sq.{n}"] = s["exp_avg_sq"].detach().clone()
                step = int(s["step"])
            torch.save(st, os.path.join(a.out, f"adam_{i}.pth"))
            with open(os.path.join(a.out, f"adam_{i}.json"), "w") as f:
                json.dump({"step": step, "lr": model.optimizer.param_groups[0]["lr"]}, f)
        if i % max(1, a.steps // 10) == 0:
            print(f"step {i} loss {np.mean(losses[-a.every:]):.5f} ({(time.time() - t0) / i:.3f} s/step)", flush=True)
    torch.randint, torch.randn_like = orig_randint, orig_randn_like
    np.save(os.path.join(a.out, "aug.npy"), np.stack(augs))
    np.save(os.path.join(a.out, "t.npy"), np.stack(ts).astype(np.int64))
    np.save(os.path.join(a.out, "z.npy"), np.stack(zs))
    if zSs:
        np.save(os.path.join(a.out, "zS.npy"), np.stack(zSs))
    np.save(os.path.join(a.out, "loss.npy"), np.asarray(losses, np.float32))
    meta = {"which": a.which, "net": {"class": "ConditionalUNet", "in_nc": 1 if a.which == "structure" else 3,
                                      "out_nc": 1 if a.which == "structure" else 3, "nf": a.nf, "depth": 4,
                                      "spade": a.which == "texture"},
            "T": T, "lr": a.lr, "betas": list(model.optimizer.param_groups[0]["betas"]),
            "eps": model.optimizer.param_groups[0]["eps"], "batch": B, "size": S, "steps": a.steps,
            "every": a.every, "checkpoints": ckpts, "aug": a.aug or bool(rp is not None and rp["aug"].any()), "mask_aug": a.mask_aug,
            "replay_of": a.replay, "perturb": a.perturb, "seed": a.seed,
            "seconds_per_step": (time.time() - t0) / a.steps,
            # median over the steps after the first (warm-up), the step alone (no recording, no saving)
            "step_s_median": float(np.median(step_wall[1:] or step_wall)),
            "step_cpu_s_median": float(np.median(step_cpu[1:] or step_cpu)), "official_commit": open(os.path.join(root, ".strd_commit")).read().strip()
            if os.path.exists(os.path.join(root, ".strd_commit")) else None}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("official %s: %d steps, loss mean of last %d: %.5f, %.3f s/step -> %s" % (
        a.which, a.steps, a.every, float(np.mean(losses[-a.every:])), meta["seconds_per_step"], a.out))


if __name__ == "__main__":
    main()
