# The plots of streamtrain_bench_swap (bench/README.md): bytes each configuration published
# per retraining swap against the test accuracy it served (left), and the served test
# accuracy after every swap (right). The benchmark runs it; to redraw from the committed CSVs:
#   gnuplot -e "csv='bench/results/swap.csv'; curves='bench/results/swap_curves.csv'; \
#     png='bench/results/swap.png'" bench/plot_swap.gp
if (!exists("csv")) csv = 'bench/results/swap.csv'
if (!exists("curves")) curves = 'bench/results/swap_curves.csv'
if (!exists("png")) png = 'bench/results/swap.png'
if (!exists("configs")) configs = 'never full full-warm partial-1%-q0 partial-1%-q100 partial-1%-q400 partial-10%-q0 partial-10%-q100 partial-1%-q100-scratch partial-10%-q100-scratch'

set terminal pngcairo size 1400,640 font ',10'
set output png
set datafile separator ','
set grid

# Scratch-started partial swaps dashed; colour by ratio.
dash(c) = strstrt(c, 'scratch') > 0 ? 2 : 1
colour(c) = c eq 'never' ? '#000000' : c eq 'full' ? '#666666' : c eq 'full-warm' ? '#1b9e77' : \
  strstrt(c, 'partial-1%') ? (strstrt(c, 'scratch') ? '#fdae6b' : '#d95f02') : \
  (strstrt(c, 'scratch') ? '#9ecae1' : '#3182bd')
only(c, col) = strcol(1) eq c ? column(col) : NaN

set multiplot layout 1,2
set title 'Bytes published per swap against served test accuracy (mean after the swaps)'
set logscale x 10
set format x '10^{%L}'
set xlabel 'bytes per swap (log scale)'
set ylabel 'test accuracy'
set key off
# Rows without swaps (never swapped) have no place on a log axis.
plot csv skip 1 using ($8 > 0 ? $8 : NaN):12 with points pt 7 ps 1.5 lc rgb '#3182bd' notitle, \
  '' skip 1 using ($8 > 0 ? $8 : NaN):12:1 with labels offset 0,1 font ',8' notitle

unset logscale x
set format x '%g'
set title 'Served test accuracy after each swap (0: the initial model)'
set xlabel 'swap'
set xtics 1
set key outside below center horizontal maxrows 3
plot for [i=1:words(configs)] curves skip 1 \
  using 2:(only(word(configs, i), 3)) with linespoints lw 1.5 pt 7 ps 0.6 \
  lc rgb colour(word(configs, i)) dt dash(word(configs, i)) title word(configs, i)
unset multiplot
