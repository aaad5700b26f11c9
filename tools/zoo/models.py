"""Small CIFAR-10 architectures written the way the public collections write
them (kuangliu/pytorch-cifar, chenyaofo/pytorch-cifar-models): our own
definitions, narrow enough for make check, for the exporter, the engine and
the reference to agree on every layer and spelling those collections use.

ZOO maps a name to (constructor, what it exercises). Every model takes
(n, 3, 32, 32) and returns (n, 10) logits.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act(inplace=True) if act is not None else nn.Identity())


# -- MobileNet (v1): depthwise + pointwise ------------------------------------
class MobileNet(nn.Module):
    cfg = [16, (32, 2), 32, (64, 2), 64]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for x in self.cfg:
            cout, stride = (x, 1) if isinstance(x, int) else x
            layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                       nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.avg_pool2d(out, 8)
        out = out.view(out.size(0), -1)
        return self.linear(out)


# -- MobileNetV2: inverted residuals, ReLU6 (chenyaofo spells it nn.ReLU6) -----
class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(conv_bn(cin, hidden, 1, act=nn.ReLU6),
                                  conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 16, act=nn.ReLU6), InvertedResidual(16, 16, 1, 1),
                                      InvertedResidual(16, 24, 2, 4), InvertedResidual(24, 24, 1, 4),
                                      InvertedResidual(24, 32, 2, 4), conv_bn(32, 64, 1, act=nn.ReLU6))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# -- ShuffleNetV2: split, concat, channel shuffle ------------------------------
class ShuffleBlock(nn.Module):
    def __init__(self, groups=2):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.size()
        g = self.groups
        return x.view(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class SplitBlock(nn.Module):
    """Halves along channels. (Written `c = int(x.size(1) * ratio)`, as one
    collection does, torch.fx cannot trace it: int() of a traced size.)"""

    def forward(self, x):
        c = x.size(1) // 2
        return x[:, :c, :, :], x[:, c:, :, :]


class ShuffleUnit(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.split = SplitBlock()
        c = channels // 2
        self.branch = nn.Sequential(conv_bn(c, c, 1), conv_bn(c, c, 3, groups=c, act=None), conv_bn(c, c, 1))
        self.shuffle = ShuffleBlock()

    def forward(self, x):
        x1, x2 = self.split(x)
        out = torch.cat([x1, self.branch(x2)], 1)
        return self.shuffle(out)


class DownUnit(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 2
        self.left = nn.Sequential(conv_bn(cin, cin, 3, 2, groups=cin, act=None), conv_bn(cin, mid, 1))
        self.right = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, 2, groups=mid, act=None),
                                   conv_bn(mid, mid, 1))
        self.shuffle = ShuffleBlock()

    def forward(self, x):
        return self.shuffle(torch.cat([self.left(x), self.right(x)], 1))


class ShuffleNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 24)
        self.layers = nn.Sequential(DownUnit(24, 48), ShuffleUnit(48), DownUnit(48, 96), ShuffleUnit(96))
        self.linear = nn.Linear(96, 10)

    def forward(self, x):
        out = self.layers(self.stem(x))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(out.view(out.size(0), -1))


# -- SENet (pre-activation blocks with squeeze-excitation, kuangliu style) -----
class SEBlock(nn.Module):
    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False))
                         if stride != 1 or cin != planes else None)
        self.fc1 = nn.Conv2d(planes, planes // 4, 1)
        self.fc2 = nn.Conv2d(planes // 4, planes, 1)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        w = F.avg_pool2d(out, out.size(2))
        w = F.relu(self.fc1(w))
        w = F.sigmoid(self.fc2(w))
        out = out * w
        out += shortcut
        return out


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = SEBlock(16, 16)
        self.layer2 = SEBlock(16, 32, 2)
        self.linear = nn.Linear(32, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.avg_pool2d(out, 16)
        return self.linear(out.view(out.size(0), -1))


# -- DenseNet (bottlenecks concatenated, transitions) -------------------------
class Bottleneck(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class DenseNet(nn.Module):
    def __init__(self, growth=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2 * growth, 3, padding=1, bias=False)
        c = 2 * growth
        self.dense1 = nn.Sequential(Bottleneck(c, growth), Bottleneck(c + growth, growth))
        c += 2 * growth
        self.trans = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                                   nn.AvgPool2d(2))
        c //= 2
        self.dense2 = nn.Sequential(Bottleneck(c, growth), Bottleneck(c + growth, growth))
        c += 2 * growth
        self.bn = nn.BatchNorm2d(c)
        self.linear = nn.Linear(c, 10)

    def forward(self, x):
        out = self.dense2(self.trans(self.dense1(self.conv1(x))))
        out = F.avg_pool2d(F.relu(self.bn(out)), 16)
        return self.linear(out.view(out.size(0), -1))


# -- GoogLeNet (reduced): four-branch inception blocks --------------------------
class Inception(nn.Module):
    def __init__(self, cin, n1, n3r, n3, n5r, n5, pool):
        super().__init__()
        self.b1 = conv_bn(cin, n1, 1)
        self.b2 = nn.Sequential(conv_bn(cin, n3r, 1), conv_bn(n3r, n3, 3))
        self.b3 = nn.Sequential(conv_bn(cin, n5r, 1), conv_bn(n5r, n5, 3), conv_bn(n5, n5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn(cin, pool, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = conv_bn(3, 32)
        self.a3 = Inception(32, 16, 16, 24, 4, 8, 8)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.b3 = Inception(56, 24, 16, 32, 8, 16, 16)
        self.avgpool = nn.AvgPool2d(8, stride=1)
        self.linear = nn.Linear(88, 10)

    def forward(self, x):
        out = self.maxpool(self.a3(self.pre(x)))
        out = self.maxpool(self.b3(out))
        out = self.avgpool(out)
        return self.linear(out.view(out.size(0), -1))


# -- ResNeXt29 (small width): grouped 3x3 convs --------------------------------
class ResNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = ResNeXtBlock(16, 4, 4, 1)
        self.layer2 = ResNeXtBlock(32, 4, 8, 2)
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.avg_pool2d(out, 16)
        return self.linear(out.view(out.size(0), -1))


# -- EfficientNet-style MBConv: swish as x * x.sigmoid(), SE by adaptive pool ---
def swish(x):
    return x * x.sigmoid()


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, stride):
        super().__init__()
        c = cin * expand
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.se1 = nn.Conv2d(c, c // 4, 1)
        self.se2 = nn.Conv2d(c // 4, c, 1)
        self.conv3 = nn.Conv2d(c, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        out = swish(self.bn1(self.conv1(x)))
        out = swish(self.bn2(self.conv2(out)))
        w = F.adaptive_avg_pool2d(out, 1)
        w = self.se2(swish(self.se1(w))).sigmoid()
        out = self.bn3(self.conv3(out * w))
        return out + x if self.skip else out


class EfficientNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layers = nn.Sequential(MBConv(16, 16, 1, 1), MBConv(16, 24, 4, 2), MBConv(24, 24, 4, 1))
        self.linear = nn.Linear(24, 10)

    def forward(self, x):
        out = swish(self.bn1(self.conv1(x)))
        out = F.adaptive_avg_pool2d(self.layers(out), 1)
        out = out.view(out.size(0), -1)
        return self.linear(F.dropout(out, 0.2, self.training))


# -- RepVGG, training form: three branches summed, "+ 0" without identity ------
class RepVGGBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.dense = conv_bn(cin, cout, 3, stride, act=None)
        self.one = conv_bn(cin, cout, 1, stride, act=None)
        self.nonlinearity = nn.ReLU()

    def forward(self, inputs):
        id_out = 0 if self.identity is None else self.identity(inputs)
        return self.nonlinearity(self.dense(inputs) + self.one(inputs) + id_out)


class RepVGG(nn.Module):
    def __init__(self, widths=(16, 32, 32), strides=(2, 2, 1)):
        super().__init__()
        blocks, cin = [], 3
        for w, s in zip(widths, strides):
            blocks.append(RepVGGBlock(cin, w, s))
            cin = w
        self.stage0 = blocks[0]
        self.stage1 = nn.Sequential(*blocks[1:])
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        out = self.gap(self.stage1(self.stage0(x)))
        return self.linear(out.view(out.size(0), -1))


# -- spellings of user code: dilation, hard activations, scalars, chunk/split ---
class Spellings(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 12, 3, padding=2, dilation=2)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, groups=3)
        self.c3 = nn.Conv2d(12, 16, 3, stride=2, padding=1)
        self.act = nn.Hardswish()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.act(self.c1(x))
        a, b = x.chunk(2, 1)
        a = F.hardsigmoid(self.c2(a)) * 2 - 1
        p, q = torch.split(b, [2, 4], dim=1)
        y = torch.cat((a, F.relu6(p / 3 + 0.5), F.silu(q) + 0), 1)
        y = F.hardswish(self.c3(y))
        return self.fc(y.mean((2, 3)))


# -- VGG (configurations by name, as the collections write them) ---------------
VGG_CFG = {
    "VGG11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "VGG16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "VGG19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, name="VGG11", bn=True, width=1.0):
        super().__init__()
        layers, cin = [], 3
        for x in VGG_CFG[name]:
            if x == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
                continue
            c = max(4, int(x * width))
            layers += [nn.Conv2d(cin, c, kernel_size=3, padding=1)]
            layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)] if bn else [nn.ReLU(inplace=True)]
            cin = c
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, 10)

    def forward(self, x):
        out = self.features(x)
        out = out.view(out.size(0), -1)
        return self.classifier(out)


# -- ResNet18/34/50 (basic and bottleneck blocks, 1x1 projection shortcuts) ---
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class BottleneckBlock(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, groups=1):
        super().__init__()
        out = self.expansion * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != out:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                          nn.BatchNorm2d(out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNeXtBlock(BottleneckBlock):
    """ResNeXt29's block: a bottleneck of cardinality x width channels in
    grouped 3x3 convs, expanded 2x; the sum spelled F.relu(out + shortcut)."""
    expansion = 2

    def __init__(self, cin, cardinality, width, stride):
        super().__init__(cin, cardinality * width, stride, groups=cardinality)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, width=1.0):
        super().__init__()
        w = [max(4, int(c * width)) for c in (64, 128, 256, 512)]
        self.in_planes = w[0]
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.layer1 = self._make_layer(block, w[0], num_blocks[0], 1)
        self.layer2 = self._make_layer(block, w[1], num_blocks[1], 2)
        self.layer3 = self._make_layer(block, w[2], num_blocks[2], 2)
        self.layer4 = self._make_layer(block, w[3], num_blocks[3], 2)
        self.linear = nn.Linear(w[3] * block.expansion, 10)

    def _make_layer(self, block, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


# -- PreActResNet18 -------------------------------------------------------------
class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out += shortcut
        return out


class PreActResNet(ResNet):
    def __init__(self, width=1.0):
        super().__init__(PreActBlock, [2, 2, 2, 2], width)
        self.bn = nn.BatchNorm2d(self.in_planes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


# -- ResNet20/56, option A: a lambda layer subsamples and zero-pads channels ----
class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class OptionABlock(nn.Module):
    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            pad = planes // 4
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, depth=20, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, n, 1)
        self.layer2 = self._make_layer(2 * width, n, 2)
        self.layer3 = self._make_layer(4 * width, n, 2)
        self.linear = nn.Linear(4 * width, 10)

    def _make_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(OptionABlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        return self.linear(out)


# -- RegNetX (grouped bottlenecks by group width) -------------------------------
class RegNetBlock(nn.Module):
    def __init__(self, cin, cout, group_width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, groups=cout // group_width, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)


class RegNetX(nn.Module):
    """RegNetX_200MF's widths (24, 56, 152, 368), group width 8; depths (1, 1, 4, 7)."""

    def __init__(self, depths=(1, 1, 4, 7), widths=(24, 56, 152, 368), group_width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for i, (d, w) in enumerate(zip(depths, widths)):
            for k in range(d):
                layers.append(RegNetBlock(cin, w, group_width, 2 if k == 0 and i > 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        return self.linear(out.view(out.size(0), -1))


# -- DLA (small): trees whose roots concatenate their children ------------------
class Root(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, xs):
        x = torch.cat(xs, 1)
        return F.relu(self.bn(self.conv(x)))


class Tree(nn.Module):
    def __init__(self, cin, cout, level=1, stride=1):
        super().__init__()
        self.root = Root(2 * cout, cout)
        if level == 1:
            self.left_tree = BasicBlock(cin, cout, stride)
            self.right_tree = BasicBlock(cout, cout, 1)
        else:
            self.left_tree = Tree(cin, cout, level - 1, stride)
            self.right_tree = Tree(cout, cout, level - 1, 1)

    def forward(self, x):
        out1 = self.left_tree(x)
        out2 = self.right_tree(out1)
        return self.root([out1, out2])


class SimpleDLA(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.base = conv_bn(3, width)
        self.layer1 = Tree(width, 2 * width, level=1, stride=2)
        self.layer2 = Tree(2 * width, 4 * width, level=2, stride=2)
        self.linear = nn.Linear(4 * width, 10)

    def forward(self, x):
        out = self.layer2(self.layer1(self.base(x)))
        out = F.avg_pool2d(out, 8)
        return self.linear(out.view(out.size(0), -1))


# -- RepVGG-A0, deploy form: each block one 3x3 conv with bias, then ReLU -------
class RepVGGDeploy(nn.Module):
    def __init__(self, widths=(16, 32, 32, 64), strides=(2, 2, 1, 2)):
        super().__init__()
        layers, cin = [], 3
        for w, s in zip(widths, strides):
            layers += [nn.Conv2d(cin, w, 3, s, 1, bias=True), nn.ReLU()]
            cin = w
        self.stages = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(output_size=1)
        self.linear = nn.Linear(cin, 10)

    def forward(self, x):
        out = self.gap(self.stages(x))
        return self.linear(out.view(out.size(0), -1))


# -- ProtoPNet heads ("this looks like that") over the backbones above ---------
class ResNetTrunk(nn.Module):
    """The ResNet above up to its last stage: a 4x4 map."""

    def __init__(self, net):
        super().__init__()
        self.conv1, self.bn1 = net.conv1, net.bn1
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)

    def forward(self, x):
        return self.layers(F.relu(self.bn1(self.conv1(x))))


def protopnet(name):
    """hfc_models.ProtoPNet (the authors' spelling; 2 prototypes per class
    of depth 16) over a zoo backbone's feature map."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import hfc_models
    if name == "vgg11":  # features without the last max-pool and the 1x1 average: 2x2
        return hfc_models.ProtoPNet(nn.Sequential(*list(VGG("VGG11", True, width=0.125).features)[:-2]), 64,
                                    per_class=2, depth=16)
    if name == "resnet18":
        return hfc_models.ProtoPNet(ResNetTrunk(ResNet(BasicBlock, [2, 2, 2, 2], width=0.125)), 64,
                                    per_class=2, depth=16)
    if name == "mobilenetv2-linear":  # an 8x8 map; similarity -d
        return hfc_models.ProtoPNet(MobileNetV2().features, 64, per_class=2, depth=16, similarity="linear")
    raise ValueError(name)


ZOO = {
    "vgg11": (lambda: VGG("VGG11", True, width=0.125), "VGG11 with BN at 1/8 width: conv-bn-relu, max-pool to 1x1"),
    "vgg11-nobn": (lambda: VGG("VGG11", False, width=0.125), "VGG11 without BN"),
    "vgg16": (lambda: VGG("VGG16", True, width=0.125), "VGG16 with BN at 1/8 width"),
    "vgg16-nobn": (lambda: VGG("VGG16", False, width=0.125), "VGG16 without BN"),
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2], width=0.125), "ResNet18 at 1/8 width: `out += shortcut`"),
    "resnet34": (lambda: ResNet(BasicBlock, [3, 4, 6, 3], width=0.125), "ResNet34 at 1/8 width"),
    "resnet50": (lambda: ResNet(BottleneckBlock, [3, 4, 6, 3], width=0.125), "ResNet50 at 1/8 width: bottlenecks"),
    "preactresnet18": (lambda: PreActResNet(width=0.125), "PreActResNet18 at 1/8 width: `hasattr(self, 'shortcut')`"),
    "resnet20": (lambda: CifarResNet(20), "ResNet20, option A by a lambda layer (F.pad of x[:, :, ::2, ::2])"),
    "resnet56": (lambda: CifarResNet(56, width=8), "ResNet56 at half width, option A"),
    "regnetx": (lambda: RegNetX(depths=(1, 1, 2, 2), widths=(8, 16, 32, 64), group_width=8),
                "RegNetX_200MF's design, reduced: grouped bottlenecks"),
    "dla": (SimpleDLA, "SimpleDLA, reduced: trees whose roots concatenate a list"),
    "repvgg-deploy": (RepVGGDeploy, "RepVGG deploy form: 3x3 convs with bias + ReLU"),
    "mobilenet": (MobileNet, "depthwise (groups = channels) and 1x1 convs"),
    "mobilenetv2": (MobileNetV2, "inverted residuals, depthwise convs, ReLU6, adaptive pool"),
    "shufflenetv2": (ShuffleNetV2, "x[:, :c] split, cat, n, c, h, w = x.size() shuffle via permute, "
                                   "depthwise stride 2"),
    "senet": (SENet, "squeeze-excitation: avg_pool2d(x, x.size(2)), sigmoid, x * w"),
    "densenet": (DenseNet, "torch.cat dense connections, transitions"),
    "googlenet": (GoogLeNet, "four-branch concat, padded max-pool"),
    "resnext": (ResNeXt, "grouped 3x3 convs, projection shortcuts"),
    "efficientnet": (EfficientNet, "swish x * x.sigmoid(), SE by adaptive pool, depthwise"),
    "repvgg": (RepVGG, "training form: three branches summed, + 0 without identity"),
    "spellings": (Spellings, "dilation, grouped conv, hardswish, hardsigmoid, relu6, silu, chunk, "
                             "split, scalar * - / +"),
    "protopnet-vgg11": (lambda: protopnet("vgg11"), "ProtoPNet over VGG11's features (2x2 map), "
                                                     "log similarity, returns (logits, min_distances)"),
    "protopnet-resnet18": (lambda: protopnet("resnet18"), "ProtoPNet over ResNet18's stages (4x4 map)"),
    "protopnet-mobilenetv2": (lambda: protopnet("mobilenetv2-linear"),
                              "ProtoPNet over MobileNetV2's features (8x8 map), linear similarity"),
}

# Full-size versions (HFC_FULL=1 make check): the collections' own widths.
# RepVGG-A0's layout (stages of 1, 2, 4, 14, 1 blocks, widths 48, 48, 96,
# 192, 1280) on 32x32 inputs: the first stage keeps stride 1, each later
# one starts with stride 2 (maps 32, 16, 8, 4, 2).
REPVGG_A0_WIDTHS = (48,) + (48,) * 2 + (96,) * 4 + (192,) * 14 + (1280,)
REPVGG_A0_STRIDES = (1,) + (2, 1) + (2, 1, 1, 1) + (2,) + (1,) * 13 + (2,)

ZOO_FULL = {
    "vgg11-full": lambda: VGG("VGG11", True), "vgg16-full": lambda: VGG("VGG16", True),
    "resnet18-full": lambda: ResNet(BasicBlock, [2, 2, 2, 2]),
    "resnet50-full": lambda: ResNet(BottleneckBlock, [3, 4, 6, 3]),
    "preactresnet18-full": PreActResNet, "resnet56-full": lambda: CifarResNet(56),
    "regnetx-full": RegNetX, "densenet-full": lambda: DenseNet(growth=32),
    "repvgg-full": lambda: RepVGG(REPVGG_A0_WIDTHS, REPVGG_A0_STRIDES),
    "repvgg-deploy-full": lambda: RepVGGDeploy(REPVGG_A0_WIDTHS, REPVGG_A0_STRIDES),
}
