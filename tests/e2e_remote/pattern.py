"""A window with four solid colour blocks at a known place: what the technician must see."""

import sys
import tkinter as tk

X, Y, SIZE = 40, 40, 120
COLOURS = ("#e02020", "#20c040", "#2040e0", "#f0d020")  # red, green, blue, yellow

root = tk.Tk()
root.title("pattern")
root.geometry(f"{SIZE * 2}x{SIZE * 2}+{X}+{Y}")
canvas = tk.Canvas(root, width=SIZE * 2, height=SIZE * 2, highlightthickness=0, bd=0)
canvas.pack()
for i, colour in enumerate(COLOURS):
    x, y = (i % 2) * SIZE, (i // 2) * SIZE
    canvas.create_rectangle(x, y, x + SIZE, y + SIZE, fill=colour, outline=colour)
root.after(200, lambda: print("ready", flush=True))
root.after(int(sys.argv[1]) * 1000 if len(sys.argv) > 1 else 600_000, root.destroy)
root.mainloop()
