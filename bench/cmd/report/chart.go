package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{20, 20, 20, 255}
	grey  = color.RGBA{150, 150, 150, 255}
	light = color.RGBA{225, 225, 225, 255}
	green = color.RGBA{46, 160, 67, 255}
	red   = color.RGBA{207, 34, 46, 255}
	blue  = color.RGBA{120, 140, 170, 255}
)

// writeChart draws one horizontal bar per ratio on a log scale, from the
// line at 1.0 to the ratio: green when its target is met, red when missed,
// grey-blue when it has none; a black tick marks each bar's target.
func writeChart(path, title string, bars []Ratio) error {
	const (
		scale  = 2
		rowH   = 30
		barH   = 18
		labelX = 16
		plotX0 = 600
		plotX1 = 1320
		valueX = 1340
		width  = 1640
		top    = 110
	)
	height := top + rowH*max(len(bars), 1) + 90
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	drawText(img, labelX, 16, title, scale, black)
	drawText(img, labelX, 44, "GREEN: TARGET MET  RED: MISSED  BLUE: NO TARGET  |: TARGET  LOG SCALE", scale, grey)

	lo, hi := 0.1, 10.0
	for _, b := range bars {
		lo = math.Min(lo, b.Value/1.5)
		hi = math.Max(hi, b.Value*1.5)
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(v float64) int {
		v = math.Min(math.Max(v, lo), hi)
		f := (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return plotX0 + int(f*float64(plotX1-plotX0))
	}
	bottom := top + rowH*len(bars)

	// Grid at 1, 2 and 5 of each decade, labelled at the decades and 0.5, 2.
	for d := lo; d < hi*1.01; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := d * m
			if v > hi*1.01 {
				break
			}
			vline(img, x(v), top-8, bottom, light)
			if m != 5 || d < 1 {
				lbl := fmt.Sprintf("%g", v)
				drawText(img, x(v)-textWidth(lbl, scale)/2, bottom+8, lbl, scale, grey)
			}
		}
	}
	for i, b := range bars {
		y := top + i*rowH
		drawText(img, labelX, y+(rowH-14)/2, b.Label, scale, black)
		c := blue
		if b.Met != nil {
			c = red
			if *b.Met {
				c = green
			}
		}
		x0, x1 := x(1), x(b.Value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		if x1-x0 < 2 {
			x1 = x0 + 2
		}
		draw.Draw(img, image.Rect(x0, y+(rowH-barH)/2, x1, y+(rowH+barH)/2), image.NewUniform(c), image.Point{}, draw.Src)
		if b.Met != nil {
			tx := x(b.targetValue)
			draw.Draw(img, image.Rect(tx-1, y+2, tx+2, y+rowH-2), image.NewUniform(black), image.Point{}, draw.Src)
		}
		val := fmtRatio(b.Value) + "×"
		if b.Target != "" {
			val += " (" + b.Target + ")"
		}
		drawText(img, valueX, y+(rowH-14)/2, val, scale, black)
	}
	// The line at 1.0 on top of everything.
	draw.Draw(img, image.Rect(x(1)-1, top-10, x(1)+2, bottom+2), image.NewUniform(black), image.Point{}, draw.Src)
	drawText(img, x(1)-textWidth("1.0", scale)/2, top-30, "1.0", scale, black)
	drawText(img, plotX0, bottom+40, "ENTREPOT / ANCHOR (FOR BUDGETS: ENTREPOT / BUDGET)", scale, grey)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func vline(img draw.Image, x, y0, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x, y0, x+1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}
