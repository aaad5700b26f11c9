"""The five CNN families hfc-eval ships and tests, as plain PyTorch modules.

Each family is written in a different but common PyTorch style on purpose,
so that the exporter (export_pytorch.py) is exercised on the usual ways
people write these nets:

  PreActResNet   the paper's pre-activation ResNet (16/32/64 channels,
                 option-A shortcuts written as x[:, :, ::2, ::2] + F.pad),
                 torch.relu, x.view(x.size(0), -1)
  ResNet20       He et al.'s CIFAR ResNet-20 (option A), F.relu,
                 x.mean((2, 3))
  ResNet18       ResNet-18 for CIFAR with 1x1 projection shortcuts,
                 nn.ReLU modules, nn.AdaptiveAvgPool2d(1) + torch.flatten
  VGG            VGG-style net with or without BatchNorm, nn.Sequential,
                 nn.MaxPool2d, nn.Flatten
  PaperResNet    the network of the paper's own code (ResNet-32 with n = 5:
                 conv-BN-ReLU stem, pre-activation blocks, the first block's
                 first conv bare, shortcuts by 2x2 average pooling + zero
                 channels, ReLU + mean + linear at the end, no conv biases,
                 BN epsilon 0.001), F.avg_pool2d, x.mean((2, 3))

`bn=False` removes every BatchNorm layer; the convolutions then carry a
bias. For the residual nets without BN the last convolution of each
residual branch starts at zero (Fixup-style), so the untrained net is close
to the identity and trains without normalisation.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def _bn(channels, bn):
    return nn.BatchNorm2d(channels) if bn else nn.Identity()


def _conv3x3(cin, cout, stride, bn):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not bn)


class ShortcutA(nn.Module):
    """Option A: subsample by 2 and pad the channels with zeros."""

    def __init__(self, cin, cout):
        super().__init__()
        self.pad = (cout - cin) // 2
        self.extra = cout - cin - 2 * self.pad

    def forward(self, x):
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad + self.extra))


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride, bn):
        super().__init__()
        self.bn1 = _bn(cin, bn)
        self.conv1 = _conv3x3(cin, cout, stride, bn)
        self.bn2 = _bn(cout, bn)
        self.conv2 = _conv3x3(cout, cout, 1, bn)
        self.shortcut = ShortcutA(cin, cout) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + self.shortcut(x)


class PreActResNet(nn.Module):
    """Pre-activation ResNet for CIFAR, depth = 6n + 2 (20, 32, 44, 56, 110)."""

    def __init__(self, depth=20, bn=True, num_classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("depth must be 6n+2")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=not bn)
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(PreActBlock(cin, cout, stride, bn))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = _bn(64, bn)
        self.fc = nn.Linear(64, num_classes)
        _kaiming(self)

    def forward(self, x):
        x = self.blocks(self.conv1(x))
        x = torch.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


class BasicBlock(nn.Module):
    """Post-activation block (He et al.), option-A or projection shortcut."""

    def __init__(self, cin, cout, stride, bn, shortcut="A"):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride, bn)
        self.bn1 = _bn(cout, bn)
        self.conv2 = _conv3x3(cout, cout, 1, bn)
        self.bn2 = _bn(cout, bn)
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(cin, cout)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=not bn), _bn(cout, bn))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet (depth 6n+2, default 20), option-A shortcuts."""

    def __init__(self, depth=20, bn=True, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=not bn)
        self.bn1 = _bn(16, bn)
        layers, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1, bn, "A"))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(64, num_classes)
        _kaiming(self)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.linear(x.mean((2, 3)))


class ResNet18(nn.Module):
    """ResNet-18 for CIFAR (3x3 stem, no max pool), 1x1 projection shortcuts."""

    def __init__(self, bn=True, num_classes=10, width=64):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 3, padding=1, bias=not bn)
        self.bn1 = _bn(w, bn)
        self.relu = nn.ReLU(inplace=True)
        layers, cin = [], w
        for stage, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            for i in range(2):
                layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1, bn, "B"))
                cin = cout
        self.layer = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * w, num_classes)
        _kaiming(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layer(x))
        return self.fc(torch.flatten(x, 1))


VGG_CONFIGS = {
    # Small enough to ship (< 5 MB) yet above 90% on CIFAR-10 with BN.
    "vgg-s": [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, config="vgg-s", bn=True, num_classes=10):
        super().__init__()
        layers, cin = [], 3
        for v in VGG_CONFIGS[config]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(cin, v, 3, padding=1, bias=not bn))
                if bn:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                cin = v
        spatial = 32 // 2 ** VGG_CONFIGS[config].count("M")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * spatial * spatial, 256), nn.ReLU(inplace=True),
            nn.Linear(256, num_classes))
        _kaiming(self)

    def forward(self, x):
        return self.classifier(self.features(x))


class PaperBlock(nn.Module):
    """The paper's residual block: BN-ReLU-conv twice (the very first conv of
    the net bare), shortcut = 2x2 average pool + zero channels when the
    channels double."""

    def __init__(self, cin, cout, bn, first):
        super().__init__()
        self.first = first
        self.down = cout == 2 * cin
        self.pad = cin // 2
        self.bn1 = nn.Identity() if first or not bn else nn.BatchNorm2d(cin, eps=1e-3)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if self.down else 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(x if self.first else F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        if self.down:
            x = F.pad(F.avg_pool2d(x, 2), (0, 0, 0, 0, self.pad, self.pad))
        return out + x


class PaperResNet(nn.Module):
    """ResNet-32 (depth 6n + 2, n = 5) as in the paper's scripts/resnet.py.
    Initialised as there: Glorot-uniform convs, linear weights uniform in
    +-sqrt(3 / 64), zero bias. Inputs are pixels in [0, 1] (no mean/std).
    One difference: stride-2 convs pad one pixel on every side (PyTorch),
    where TensorFlow's SAME pads only the bottom and right."""

    def __init__(self, depth=32, bn=True, num_classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("depth must be 6n+2")
        n = (depth - 2) // 6
        self.conv0 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16, eps=1e-3) if bn else nn.Identity()
        blocks, cin = [], 16
        for cout in (16, 32, 64):
            for i in range(n):
                blocks.append(PaperBlock(cin, cout, bn, first=not blocks))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
        nn.init.uniform_(self.fc.weight, -(3 / 64) ** 0.5, (3 / 64) ** 0.5)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn0(self.conv0(x))))
        return self.fc(F.relu(x).mean((2, 3)))


def _kaiming(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    # keep the zero init of PreActBlock.conv2 in the no-BN nets
    for m in model.modules():
        if isinstance(m, PreActBlock) and isinstance(m.bn1, nn.Identity):
            nn.init.zeros_(m.conv2.weight)


FAMILIES = {
    "preact": lambda bn=True, **kw: PreActResNet(bn=bn, **kw),
    "resnet20": lambda bn=True, **kw: ResNet20(bn=bn, **kw),
    "resnet18": lambda bn=True, **kw: ResNet18(bn=bn, **kw),
    "vgg": lambda bn=True, **kw: VGG(bn=bn, **kw),
    "paper": lambda bn=True, **kw: PaperResNet(bn=bn, **kw),
}


def build(family, bn=True, **kwargs):
    """build('preact', bn=False, depth=20) -> nn.Module"""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family](bn=bn, **kwargs)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class ProtoPNet(nn.Module):
    """A prototype network ("this looks like that", Chen et al. 2019) over a
    backbone `features`, in the spelling of the authors' public code: 1x1
    add-on layers ending in a sigmoid, `prototype_vectors` (m, D, 1, 1) and
    a constant `ones` of the same shape, squared L2 distances written as
    three convolutions, the minimum over the map by a max-pool of the
    negated distances, log similarity, a bias-free last layer; forward
    returns (logits, min_distances). Prototype j belongs to class
    j // per_class; the last layer starts at 1 for its own class and
    -0.5 for the others."""

    def __init__(self, features, channels, classes=10, per_class=10, depth=128,
                 similarity="log", epsilon=1e-4):
        super().__init__()
        self.features = features
        self.num_prototypes = m = classes * per_class
        self.num_classes = classes
        self.epsilon = epsilon
        self.similarity = similarity
        self.add_on_layers = nn.Sequential(
            nn.Conv2d(channels, depth, 1), nn.ReLU(), nn.Conv2d(depth, depth, 1), nn.Sigmoid())
        self.prototype_vectors = nn.Parameter(torch.rand(m, depth, 1, 1))
        self.ones = nn.Parameter(torch.ones(m, depth, 1, 1), requires_grad=False)
        identity = torch.zeros(m, classes)
        identity[torch.arange(m), torch.arange(m) // per_class] = 1
        self.register_buffer("prototype_class_identity", identity)
        self.last_layer = nn.Linear(m, classes, bias=False)
        self.last_layer.weight.data.copy_(identity.t() - 0.5 * (1 - identity.t()))

    def conv_features(self, x):
        return self.add_on_layers(self.features(x))

    def _l2_convolution(self, x):
        x2_patch_sum = F.conv2d(input=x ** 2, weight=self.ones)
        p2 = torch.sum(self.prototype_vectors ** 2, dim=(1, 2, 3))
        xp = F.conv2d(input=x, weight=self.prototype_vectors)
        return F.relu(x2_patch_sum + (-2 * xp + p2.view(-1, 1, 1)))

    def distance_2_similarity(self, distances):
        if self.similarity == "log":
            return torch.log((distances + 1) / (distances + self.epsilon))
        return -distances

    def prototype_distances(self, x):
        return self._l2_convolution(self.conv_features(x))

    def forward(self, x):
        distances = self.prototype_distances(x)
        min_distances = -F.max_pool2d(-distances, kernel_size=(distances.size()[2], distances.size()[3]))
        min_distances = min_distances.view(-1, self.num_prototypes)
        return self.last_layer(self.distance_2_similarity(min_distances)), min_distances


def vgg_protopnet(bn=True, **kwargs):
    """ProtoPNet over the shipped VGG-style backbone's features without their
    last max-pool (a 4x4 map of 256 channels on 32x32 images)."""
    vgg = VGG(bn=bn)
    return ProtoPNet(nn.Sequential(*list(vgg.features)[:-1]), 256, **kwargs)
