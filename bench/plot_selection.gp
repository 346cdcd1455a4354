# streamtrain_bench_selection (bench/README.md): selection time as a multiple of the
# memory-bandwidth floor, per model, against the ratio. Redraw from the committed CSV:
#   gnuplot -e "csv='bench/results/selection.csv'; png='bench/results/selection.png'" \
#     bench/plot_selection.gp
if (!exists("csv")) csv = 'bench/results/selection.csv'
if (!exists("png")) png = 'bench/results/selection.png'
set terminal pngcairo size 1500,450 font ',10'
set output png
set datafile separator ','
set grid
set logscale xy
set xlabel 'ratio k / N (%)'
set ylabel 'x floor (one read+write pass)'
set key outside below center horizontal
whats = 'threshold_train threshold_shadow topk_train topk_shadow randomk_train randomk_shadow dpu_train dpu_shadow encode_f32 encode_f16'
label(w) = system(sprintf("echo %s | tr _ ' '", w))
only(m, w, col) = (strcol(1) eq m && strcol(4) eq label(w)) ? column(col) : NaN
set multiplot layout 1,3
do for [m in 'lenet5 resnet18 resnet50'] {
  set title m
  plot for [i=1:words(whats)] csv skip 1 using ($3*100):(only(m, word(whats, i), 8)) \
         with linespoints title label(word(whats, i)), 1.5 with lines dt 2 lc 'black' title 'target 1.5x'
}
unset multiplot
