"""
Measure white cells and compare classes
=======================================

Segment synthetic smear fields, measure the largest white cell of each with
the default handcrafted feature vector, and compare a few named features
between the two classes with :func:`leukfeat.plot.feature_distributions`.
"""

import numpy as np

from leukfeat import FeatureExtractor, datasets, extract, plot, segment

data = datasets.make_cells(24, n_classes=2, size=160, random_state=1)
for image, label in zip(data.images[:2], data.labels[:2]):
    seg = segment.segment(image)          # the default segmenter
    f = extract.features(image, seg)      # ordered name -> value, the largest cell
    print(f"class {data.class_names[label]}: {len(f)} features; "
          f"N:C ratio {f['shape_nc_ratio']:.2f}, "
          f"nucleus circularity {f['shape_nucleus_circularity']:.2f}, "
          f"GLCM contrast {f['glcm_contrast_d1_mean']:.2f}, "
          f"nucleus mean a* {f['colour_nucleus_lab_a_mean']:.1f}")

print("first names:", extract.feature_names()[:5])

# %%
# One row per image
# -----------------
# :class:`~leukfeat.FeatureExtractor` does the same for a whole batch (image
# arrays here, file paths in practice) and names its columns; with pandas
# output it returns a DataFrame. Each histogram and box shows one feature's
# values in each class.

X = FeatureExtractor().set_output(transform="pandas").fit_transform(list(data.images))
y = np.array([data.class_names[c] for c in data.labels])
print(f"feature table: {X.shape[0]} images x {X.shape[1]} features")
fig = plot.feature_distributions(
    X, y, ["shape_nc_ratio", "shape_nucleus_circularity", "glcm_contrast_d1_mean"], bins=12)
