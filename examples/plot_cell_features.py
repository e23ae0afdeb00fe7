"""
Measure a white cell
====================

Segment a synthetic smear field, measure its largest white cell with the
default handcrafted feature vector, and show a few named features.
"""

from leukfeat import datasets, extract, segment

data = datasets.make_cells(2, n_classes=2, size=192, random_state=1)
for image, label in zip(data.images, data.labels):
    seg = segment.segment(image)          # the default segmenter
    f = extract.features(image, seg)
    print(f"class {data.class_names[label]}: {len(f)} features; "
          f"N:C ratio {f['shape_nc_ratio']:.2f}, "
          f"nucleus circularity {f['shape_nucleus_circularity']:.2f}, "
          f"GLCM contrast {f['glcm_contrast_d1_mean']:.2f}, "
          f"nucleus mean a* {f['colour_nucleus_lab_a_mean']:.1f}")

print("first names:", extract.feature_names()[:5])
