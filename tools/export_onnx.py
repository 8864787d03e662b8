#!/usr/bin/python3
"""Export an slr weights file to ONNX through tools/slr_torch.py, and check the result.

The model is the one the weights file describes (slr_torch.load), in eval
mode, with a dynamic batch axis: input "images" (N, 3, H, W) float32,
normalised as slr does; output "features" (N, D) as `slr infer --output`
gives them (the L2-normalised neck feature by default).

Checks, unless --no-check: onnx.checker.check_model on the graph, then the
outputs of the exported graph on a random batch against PyTorch's, with
the first runtime found: onnx's reference evaluator (onnx >= 1.13), or
OpenCV's dnn module (Debian: python3-opencv; Debian 12 has onnx 1.12 and
no onnxruntime). With none of them, only the graph is checked (said so).
OpenCV 4.6 computes InstanceNormalization with scale and bias wrongly, so
the outputs of resnet50_ibn_a graphs are not checked with it (said so).

Example:
  /usr/bin/python3 tools/export_onnx.py runs/d2m/final.h5 final.onnx --height 256 --width 128
"""
import argparse
import os
import sys


def _imports():
    """The heavy modules, imported after the arguments are parsed (so that --help is quick)."""
    global h5py, np, torch, slr_torch
    import h5py
    import numpy as np
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import slr_torch




def fail(msg):
    print("export_onnx.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def features_module(model, output):
    """The model with one kind of features as its single output (see Features)."""

    class Features(torch.nn.Module):
        """The features of one `slr infer --output` kind as the graph's single output. GeM's learnt
        exponent is frozen into the graph as a constant (p and 1/p computed in float32, as PyTorch
        does), so that runtimes without a tensor exponent (OpenCV's dnn) run the graph."""

        def __init__(self, model, output):
            super().__init__()
            self.model, self.output = model, output
            if model.pool_kind == "gem":
                p = model.pool.p.detach().reshape(1)
                self.p, self.inv_p = float(p[0]), float((1.0 / p)[0])
                self.eps = model.pool.eps

        def forward(self, x):
            m = self.model
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
            if m.pool_kind == "gem":
                pooled = x.clamp(min=self.eps).pow(self.p).mean((2, 3)).pow(self.inv_p)
            else:
                pooled = x.mean((2, 3))
            if self.output == "pooled":
                return pooled
            # the neck and the normalisation on (N, D, 1, 1): OpenCV's importer takes the (N, D) result
            # of ReduceMean for (N, 1, D) and would normalise it per sample instead of per channel
            x = pooled.reshape(-1, m.feat_dim, 1, 1)
            if m.has_neck:
                bn = m.neck
                x = torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                   False, 0.0, bn.eps)
            if self.output == "normalized":
                x = torch.nn.functional.normalize(x, dim=1, eps=1e-12)
            return x.flatten(1)

    return Features(model, output).eval()


def run_reference(path, x, ibn):
    """Outputs of the ONNX file on x with the first runtime available: (name, array) or None."""
    try:
        from onnx.reference import ReferenceEvaluator
        import onnx
        sess = ReferenceEvaluator(onnx.load(path))
        return "onnx.reference.ReferenceEvaluator", sess.run(None, {"images": x})[0]
    except ImportError:
        pass
    try:
        import cv2
    except ImportError:
        return None
    if ibn:
        # measured with OpenCV 4.6.0: InstanceNormalization with a scale and bias is off by
        # O(1), without them it is right; an IBN-a graph would fail for the runtime's fault
        print("export_onnx: OpenCV %s computes InstanceNormalization with scale and bias wrongly: "
              "the outputs of an IBN-a graph are not checked" % cv2.__version__)
        return None
    try:
        net = cv2.dnn.readNetFromONNX(path)
    except cv2.error as e:
        what = [l for l in str(e).splitlines() if "parse error" in l or "Can't create" in l]
        print("export_onnx: OpenCV %s cannot read the graph%s: outputs not checked (it reads the "
              "default --opset 10)" % (cv2.__version__, (": " + what[0].strip("> ")[:200]) if what else ""))
        return None
    net.setInput(x)
    return "OpenCV %s dnn" % cv2.__version__, net.forward()


def main(argv):
    ap = argparse.ArgumentParser(
        prog="export_onnx.py", description=__doc__.split("\n\n")[0].strip(),
        epilog="\n\n".join(__doc__.split("\n\n")[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", metavar="W.h5", help="slr weights file (it describes its model)")
    ap.add_argument("output", metavar="OUT.onnx", help="ONNX file to write")
    ap.add_argument("--height", type=int, default=256, help="input height of the traced graph (default 256)")
    ap.add_argument("--width", type=int, default=128, help="input width of the traced graph (default 128)")
    ap.add_argument("--output", dest="kind", default="normalized", choices=("pooled", "neck", "normalized"),
                    help="the features the graph returns, as slr infer --output (default normalized)")
    ap.add_argument("--opset", type=int, default=10,
                    help="ONNX opset (default 10: OpenCV 4.6's importer reads Clip only with its "
                         "bounds as attributes, as opsets up to 10 write it)")
    ap.add_argument("--last-stride", type=int, choices=(1, 2),
                    help="for a weights file that does not record it (another tool's)")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest |ONNX - PyTorch| accepted, relative to the features' largest "
                         "magnitude (default 1e-4)")
    ap.add_argument("--no-check", action="store_true", help="write the graph without checking it")
    a = ap.parse_args(argv)
    _imports()
    if a.height < 32 or a.width < 32:
        ap.error("--height and --width must be at least 32")
    try:
        model = slr_torch.load(a.weights, **({"last_stride": a.last_stride} if a.last_stride else {}))
    except (ValueError, OSError, RuntimeError, KeyError) as e:
        fail("%s: %s" % (a.weights, e))
    net = features_module(model, a.kind)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, a.height, a.width, generator=g)
    tmp = a.output + ".tmp"
    with torch.no_grad():
        want = model(x, a.kind).numpy()  # the module's own forward: slr's features
        torch.onnx.export(net, (x,), tmp, input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "N"}, "features": {0: "N"}}, opset_version=a.opset,
                          do_constant_folding=True)
    if not a.no_check:
        import onnx
        try:
            onnx.checker.check_model(onnx.load(tmp), full_check=True)
        except Exception as e:  # onnx raises its own ValidationError kinds
            os.unlink(tmp)
            fail("the exported graph does not pass onnx.checker: %s" % e)
        print("export_onnx: onnx.checker %s: the graph is valid" % onnx.__version__)
        got = run_reference(tmp, x.numpy(), model.arch == "resnet50_ibn_a")
        if got is None:
            print("export_onnx: no ONNX runtime ran the graph (onnx.reference, OpenCV dnn): outputs "
                  "not checked")
        else:
            name, y = got
            y = np.asarray(y).reshape(want.shape)
            diff = float(np.abs(y - want).max())
            scale = float(np.abs(want).max())
            print("export_onnx: %s vs PyTorch on a batch of 2: max |diff| %.3g (scale %.3g)" % (name, diff, scale))
            if not diff <= a.tolerance * scale:
                os.unlink(tmp)
                fail("the exported graph's outputs differ from PyTorch's by %.3g (> %g x %.3g)" % (
                    diff, a.tolerance, scale))
    os.replace(tmp, a.output)
    print("export_onnx: wrote %s (%s, input images (N, 3, %d, %d), output features (N, %d), %s)" % (
        a.output, model.arch, a.height, a.width, model.feat_dim, a.kind))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
