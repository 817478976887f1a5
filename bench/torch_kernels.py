"""PyTorch single-thread CPU timings for the shapes bench/kernels.ts measures.

Prints one JSON object: {"machine": ..., "torch": ..., "results": [...]}, each
result {"name", "median_ms", "repeats", "gflop"} so the TS side can pair them
by name. Run with bench/.venv/bin/python (bench/setup-torch.sh makes it).
"""
import json
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def median_ms(fn, repeats):
    fn()  # warm-up: first call allocates and picks algorithms
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), times


class ConvNet3(torch.nn.Module):
    """ConvNet-3 as in REFERENCE section 2: conv3x3 -> instance norm (GroupNorm,
    one group per channel, affine) -> ReLU -> avgpool 2x2, three times; the
    first conv pads 3 so 28x28 inputs are seen as 32x32."""

    def __init__(self, width, channels=1, classes=10, im=28):
        super().__init__()
        layers = []
        c = channels
        size = im
        for d in range(3):
            pad = 3 if (d == 0 and im == 28) else 1
            layers += [
                torch.nn.Conv2d(c, width, 3, padding=pad),
                torch.nn.GroupNorm(width, width, affine=True),
                torch.nn.ReLU(),
                torch.nn.AvgPool2d(2, 2),
            ]
            size = (size + 2 * pad - 2) // 2
            c = width
        self.features = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Linear(width * size * size, classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def conv_layers(batch, width):
    # (name, in_hw, cin, pad): the three convs of ConvNet-3 on 28x28x1.
    return [("l1", 28, 1, 3), ("l2", 16, width, 1), ("l3", 8, width, 1)]


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    results = []
    for width in (128, 32):
        for name, hw, cin, pad in conv_layers(batch, width):
            x = torch.randn(batch, cin, hw, hw)
            w = torch.randn(width, cin, 3, 3)
            out_hw = hw + 2 * pad - 2
            dy = torch.randn(batch, width, out_hw, out_hw)
            gflop = 2.0 * batch * out_hw * out_hw * 9 * cin * width / 1e9
            tag = f"w{width}/{name}"
            m, _ = median_ms(lambda: F.conv2d(x, w, padding=pad), repeats)
            results.append({"name": f"{tag}/conv2d", "median_ms": m, "repeats": repeats, "gflop": gflop})
            m, _ = median_ms(
                lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=pad), repeats)
            results.append({"name": f"{tag}/backprop_input", "median_ms": m, "repeats": repeats, "gflop": gflop})
            m, _ = median_ms(
                lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=pad), repeats)
            results.append({"name": f"{tag}/backprop_filter", "median_ms": m, "repeats": repeats, "gflop": gflop})

        net = ConvNet3(width)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x = torch.randn(batch, 1, 28, 28)
        y = torch.randint(0, 10, (batch,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()

        m, _ = median_ms(step, repeats)
        results.append({"name": f"w{width}/train_step", "median_ms": m, "repeats": repeats, "gflop": None})

    print(json.dumps({
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
