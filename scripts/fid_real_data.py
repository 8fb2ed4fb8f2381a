"""Sanity checks of the FID pipeline on real data: train vs test, and test vs noisy test.

Both sides are real MNIST digits, so FID(train, test) is the floor a perfect generator
would reach at this N; adding Gaussian noise of growing std to the test images must make
FID grow monotonically.

    python scripts/fid_real_data.py --manual_dir ../shared/data/mnist --num 10000 --noise 0.05,0.1,0.2,0.4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gan_jax.data.tfds_images import load_tfds_arrays
from gan_jax.metrics import fid, inception, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--manual_dir", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--num", type=int, default=10_000, help="images per side")
    parser.add_argument("--noise", default="0.05,0.1,0.2,0.4", help="noise stds, on the [-1, 1] scale")
    parser.add_argument("--weights", default=None, help="Inception weights file (default: see inception.py)")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--noise_only", action="store_true", help="skip FID(train, test)")
    args = parser.parse_args()

    extractor = inception.FeatureExtractor.from_file(args.weights, batch_size=args.batch)

    def featurize(images):
        start = time.perf_counter()
        features, _ = extractor(images)
        print(f"  {len(images)} images: {len(images) / (time.perf_counter() - start):.1f} images/s", flush=True)
        return {"features": features.astype(np.float32)}

    sides = {}
    for split in ("test",) if args.noise_only else ("train", "test"):
        images, _, _ = load_tfds_arrays(args.dataset, split, data_dir=args.data_dir, manual_dir=args.manual_dir)
        images = images.astype(np.float32) / 127.5 - 1.0
        sides[split] = (images, reference.reference_features(
            args.dataset, split, images, args.num, inception.NETWORK_NAME, featurize)["features"])
    protocol = f"N={args.num} per side, {inception.NETWORK_NAME}, resizer {extractor.protocol['resizer']}"
    print(f"Protocol: {protocol}")
    if not args.noise_only:
        print(f"FID({args.dataset} train, test) = {fid.fid_from_features(sides['train'][1], sides['test'][1]):.3f}")
    test_images = sides["test"][0][reference.select(len(sides["test"][0]), args.num)]
    test_features = sides["test"][1]
    rng = np.random.default_rng(0)
    for sigma in [float(s) for s in args.noise.split(",") if s]:
        noisy = np.clip(test_images + sigma * rng.standard_normal(test_images.shape).astype(np.float32), -1, 1)
        noisy_features = featurize(noisy)["features"]
        print(f"FID(test, test + N(0, {sigma}^2) noise) = {fid.fid_from_features(test_features, noisy_features):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
