"""One theme for every figure: colour-blind-safe (Okabe-Ito), distinct dashes for greyscale."""

COLORS = {
    "base": "#0072B2", "aligned": "#D55E00", "base->aligned": "#009E73", "aligned->base": "#CC79A7",
    "control_task": "#999999", "random_direction": "#555555", "majority_class": "#BBBBBB", "other": "#E69F00",
}
DASHES = {"base": "solid", "aligned": "solid", "base->aligned": "dash", "aligned->base": "dot",
          "control_task": "dashdot", "random_direction": "longdash", "majority_class": "dot"}
SIZES = {"single": (340, 260), "double": (700, 320)}  # pixels at 96 dpi: ~3.5 in and ~7 in columns
LAYOUT = dict(template="simple_white", font=dict(family="Arial", size=11), margin=dict(l=50, r=10, t=30, b=40),
              legend=dict(orientation="h", y=-0.25))
