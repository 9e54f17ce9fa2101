"""Tokens per second of one BetterRnnlm training step on the CUDA kernels, all arrays on the GPU.

The step is the book's: embedding, dropout, two stateful LSTMs with dropout after each,
the output affine tied to the embedding weight, softmax cross-entropy; backward; the tied
gradients summed; clipping at 0.25; SGD. It is composed here straight from the kernels
(time-major throughout), as the layers' GPU path will compose them, so the figure is what
the kernels allow before any layer overhead. With --models, also the book's way: Rnnlm
(D=H=100) and BetterRnnlm built with `config.GPU = True`, trained by the book's
RnnlmTrainer (stateful batches, the tied gradients merged, clipping, SGD) through
fastlstm's layers. Run on a GPU machine:

    python scripts/gpu_throughput.py [--dtype float32] [--steps 20] [--no-cublas] [--models]
"""

import argparse
import time

import numpy as np

from fastlstm import gpu


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=20, help="N, sequences per batch (book: 20)")
    p.add_argument("--time", type=int, default=35, help="T, truncated BPTT length (book: 35)")
    p.add_argument("--hidden", type=int, default=650, help="D = H, word vector and hidden width (book: 650)")
    p.add_argument("--vocab", type=int, default=10000, help="V, vocabulary size (PTB: 10000)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="weights' dtype")
    p.add_argument("--steps", type=int, default=20, help="timed training steps, after 3 warm-up steps")
    p.add_argument("--no-cublas", action="store_true", help="use the tiled GEMM kernel even if CuPy is installed")
    p.add_argument("--models", action="store_true",
                   help="also time training steps of both book models through the layers (config.GPU = True)")
    return p.parse_args()


class Step:
    """Device buffers and one training step of the BetterRnnlm."""

    def __init__(self, N, T, D, V, dtype, rng):
        from numba import cuda

        from fastlstm.kernels import linalg_cuda as lc

        H = D
        self.N, self.T, self.D, self.H, self.V, self.dtype = N, T, D, H, V, np.dtype(dtype)
        dev = cuda.to_device

        def empty(*shape):
            return cuda.device_array(shape, self.dtype)

        def init(shape, scale):
            return dev((rng.standard_normal(shape) * scale).astype(self.dtype))

        self.embed_W = init((V, D), 0.01)
        self.affine_W = lc.transpose_view(self.embed_W)  # tied: (D, V) view, no copy
        self.affine_b = dev(np.zeros(V, self.dtype))
        self.lstm = [dict(Wx=init((D, 4 * H), D ** -0.5), Wh=init((H, 4 * H), H ** -0.5),
                          b=dev(np.zeros(4 * H, self.dtype)),
                          h=dev(np.zeros((N, H), self.dtype)), c=dev(np.zeros((N, H), self.dtype)),
                          dWx=empty(D, 4 * H), dWh=empty(H, 4 * H), db=empty(4 * H),
                          hs=empty(T + 1, N, H), cs=empty(T + 1, N, H), tanh_cs=empty(T, N, H),
                          gates=empty(T, N, 4 * H), dA=empty(T, N, 4 * H), hA=empty(N, 4 * H),
                          dh=empty(N, H), dc=empty(N, H), dxs=empty(T, N, D))
                     for _ in range(2)]
        M = T * N
        self.ids = dev(rng.integers(0, V, M).astype(np.intp))
        self.targets = dev(rng.integers(0, V, M).astype(np.intp))
        self.embedded = empty(M, D)
        self.xd = [empty(M, D) for _ in range(3)]        # after each dropout: embedding, LSTM1, LSTM2 out
        self.masks = [empty(M, D) for _ in range(3)]
        self.dxd = [empty(M, D) for _ in range(3)]
        self.dx = empty(M, D)
        self.logits, self.dlogits = empty(M, V), empty(M, V)
        self.row_lse = empty(M)
        self.row_loss = cuda.device_array(M, np.float64)
        self.d_embed_W = empty(V, D)
        self.d_affine_W_buf = empty(V, D)                   # holds the (D, V) gradient transposed
        self.d_affine_b = empty(V)
        self.norm2 = cuda.device_array(1, np.float64)
        self.seed = 0

    def lstm_forward(self, p, xs):
        from fastlstm.kernels import linalg_cuda as lc
        from fastlstm.kernels import lstm_cuda

        T, N, H = self.T, self.N, self.H
        lc.matmul(xs, p["Wx"], p["gates"].reshape(T * N, 4 * H))
        p["hs"][0].copy_to_device(p["h"])
        p["cs"][0].copy_to_device(p["c"])
        for t in range(T):
            lc.matmul(p["hs"][t], p["Wh"], p["hA"])
            lstm_cuda.lstm_step_forward(p["gates"][t], p["hA"], p["b"], p["cs"][t], p["cs"][t + 1],
                                        p["tanh_cs"][t], p["hs"][t + 1])
        p["h"].copy_to_device(p["hs"][T])  # stateful: carried to the next batch
        p["c"].copy_to_device(p["cs"][T])
        return p["hs"][1:].reshape(T * N, H)

    def lstm_backward(self, p, xs, dhs):
        from fastlstm.kernels import linalg_cuda as lc
        from fastlstm.kernels import lstm_cuda

        T, N, H = self.T, self.N, self.H
        lc.zero(p["dh"])
        lc.zero(p["dc"])
        WhT = lc.transpose_view(p["Wh"])
        dhs = dhs.reshape(T, N, H)
        for t in range(T - 1, -1, -1):
            lstm_cuda.lstm_step_backward(p["gates"][t], p["cs"][t], p["tanh_cs"][t], dhs[t], p["dh"], p["dc"],
                                         p["dA"][t])
            lc.matmul(p["dA"][t], WhT, p["dh"])
        dA2 = p["dA"].reshape(T * N, 4 * H)
        lc.matmul_tn_into(xs, dA2, p["dWx"])
        lc.matmul_tn_into(p["hs"][:T].reshape(T * N, H), dA2, p["dWh"])
        lc.column_sums(dA2, p["db"])
        dxs = p["dxs"].reshape(T * N, self.D)
        lc.matmul(dA2, lc.transpose_view(p["Wx"]), dxs)
        return dxs

    def dropout(self, i, x):
        from fastlstm.kernels import dropout_cuda

        self.seed += 1
        dropout_cuda.dropout_forward(x.reshape(x.size), np.uint64(self.seed), 0.5, 2.0,
                                     self.masks[i].reshape(x.size), self.xd[i].reshape(x.size))
        return self.xd[i]

    def dropout_back(self, i, dout):
        from fastlstm.kernels import dropout_cuda

        n = dout.size
        dropout_cuda.dropout_backward(dout.reshape(n), self.masks[i].reshape(n), self.dxd[i].reshape(n))
        return self.dxd[i]

    def params_and_grads(self):
        l1, l2 = self.lstm
        return [(self.embed_W, self.d_embed_W), (self.affine_b, self.d_affine_b)] + [
            (p[k], p["d" + k]) for p in (l1, l2) for k in ("Wx", "Wh", "b")]

    def __call__(self, lr=20.0, max_grad=0.25):
        """One training step; returns the mean loss (one small device-to-host copy)."""
        from fastlstm.kernels import embedding_cuda, optim_cuda, softmax_cuda
        from fastlstm.kernels import linalg_cuda as lc

        l1, l2 = self.lstm
        embedding_cuda.embedding_forward(self.embed_W, self.ids, self.embedded)
        h = self.lstm_forward(l1, self.dropout(0, self.embedded))
        h = self.lstm_forward(l2, self.dropout(1, h))
        x3 = self.dropout(2, h)
        lc.matmul(x3, self.affine_W, self.logits)
        lc.add_bias(self.logits, self.affine_b)
        softmax_cuda.softmax_cross_entropy_forward(self.logits, self.targets, self.row_lse, self.row_loss)
        M = self.T * self.N
        softmax_cuda.softmax_cross_entropy_backward(self.logits, self.targets, self.row_lse, 1.0 / M, self.dlogits)
        lc.matmul(self.dlogits, lc.transpose_view(self.affine_W), self.dx)
        lc.matmul_tn_into(x3, self.dlogits, lc.transpose_view(self.d_affine_W_buf))
        lc.column_sums(self.dlogits, self.d_affine_b)
        dh = self.lstm_backward(l2, self.xd[1], self.dropout_back(2, self.dx))
        dh = self.lstm_backward(l1, self.xd[0], self.dropout_back(1, dh))
        embedding_cuda.embedding_backward(self.ids, self.dropout_back(0, dh), self.d_embed_W)
        # tied weights: the book's remove_duplicate adds the affine gradient (transposed) to the embedding's
        optim_cuda.sgd(self.d_embed_W.reshape(self.V * self.D), self.d_affine_W_buf.reshape(self.V * self.D), -1.0)
        pg = self.params_and_grads()
        lc.zero(self.norm2.reshape(1, 1))
        for _, g in pg:
            optim_cuda.add_sum_squares(g.reshape(g.size), self.norm2)
        norm = float(np.sqrt(self.norm2.copy_to_host()[0]))
        rate = max_grad / (norm + 1e-6)
        for p, g in pg:
            if rate < 1:
                optim_cuda.scale(g.reshape(g.size), rate)
            optim_cuda.sgd(p.reshape(p.size), g.reshape(g.size), lr)
        return float(self.row_loss.copy_to_host().sum() / M)


def model_throughput(name, args):
    """Tokens/s of the book's training loop (RnnlmTrainer.fit) on a model built with config.GPU = True."""
    from numba import cuda

    from fastlstm import config, models
    from fastlstm.optimizer import SGD
    from fastlstm.trainer import RnnlmTrainer

    N, T = args.batch, args.time
    hidden = 100 if name == "Rnnlm" else args.hidden
    config.GPU = True
    np.random.seed(0)
    model = getattr(models, name)(vocab_size=args.vocab, wordvec_size=hidden, hidden_size=hidden,
                                  dtype=np.dtype(args.dtype))
    trainer = RnnlmTrainer(model, SGD(20.0))
    corpus = np.random.default_rng(0).integers(0, args.vocab, (args.steps + 1) * N * T + 1)

    def fit(steps):
        trainer.fit(corpus[:steps * N * T], corpus[1:steps * N * T + 1], max_epoch=1, batch_size=N, time_size=T,
                    max_grad=0.25, eval_interval=None)
        cuda.synchronize()

    t0 = time.perf_counter()
    fit(3)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit(args.steps)
    seconds = (time.perf_counter() - t0) / args.steps
    print(f"{name} (D=H={hidden}) through the layers: warm-up {warm:.1f} s, train step {seconds * 1e3:.2f} ms "
          f"= {N * T / seconds:,.0f} tokens/s")


def main():
    args = parse_args()
    gpu.require()
    from numba import cuda

    from fastlstm.kernels import linalg_cuda

    linalg_cuda.USE_CUBLAS = not args.no_cublas
    gemm = "cuBLAS (CuPy)" if linalg_cuda.cublas_available() else "tiled numba.cuda GEMM"
    name = getattr(cuda.get_current_device(), "name", "CUDA simulator")
    print(f"device {name.decode() if isinstance(name, bytes) else name}, {args.dtype}, matmul: {gemm}")
    step = Step(args.batch, args.time, args.hidden, args.vocab, args.dtype, np.random.default_rng(0))
    t0 = time.perf_counter()
    for _ in range(3):
        loss = step()
    cuda.synchronize()
    print(f"warm-up (compiles kernels) {time.perf_counter() - t0:.1f} s, loss {loss:.3f}")
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    cuda.synchronize()
    seconds = (time.perf_counter() - t0) / args.steps
    tokens = args.batch * args.time
    print(f"train step {seconds * 1e3:.2f} ms = {tokens / seconds:,.0f} tokens/s (N={args.batch} T={args.time} "
          f"H={args.hidden} V={args.vocab}), loss {loss:.3f}")
    if not np.isfinite(loss):
        raise SystemExit("loss is not finite")
    if args.models:
        for name in ("Rnnlm", "BetterRnnlm"):
            model_throughput(name, args)


if __name__ == "__main__":
    main()
