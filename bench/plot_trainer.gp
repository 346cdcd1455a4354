# The prequential accuracy curves of streamtrain_bench_trainer (bench/README.md), as in the
# thesis' Figures 5.3-5.5: cumulative on the left, over the last 1,000 records on the right.
# The benchmark runs it; to redraw from the committed CSV:
#   gnuplot -e "csv='bench/results/trainer_curves.csv'; png='bench/results/trainer.png'" \
#     bench/plot_trainer.gp
if (!exists("csv")) csv = 'bench/results/trainer_curves.csv'
if (!exists("png")) png = 'bench/results/trainer.png'
if (!exists("modes")) modes = 'initial full online proactive-8 proactive-16 proactive-32 proactive-64'

set terminal pngcairo size 1200,500 font ',10'
set output png
set datafile separator ','
set grid
set key outside below center horizontal
set xlabel 'records streamed (thousands)'
set ylabel 'accuracy'
set xrange [0:*]

label(m) = m eq 'initial' ? 'initial model, no training' : m
# The initial model is a dashed black reference; full mode follows it until its first
# retraining (it serves that very model).
dash(m) = m eq 'initial' ? 2 : 1
palette = '#1b9e77 #d95f02 #7570b3 #e7298a #66a61e #e6ab02 #a6761d #666666'
colour(m, i) = m eq 'initial' ? '#000000' : word(palette, (i + 6) % 8 + 1)
# One mode's rows of the long-format CSV; the others' become NaN, which gnuplot skips.
only(m, col) = strcol(1) eq m ? column(col) : NaN

set multiplot layout 1,2
set title 'Cumulative prequential accuracy'
plot for [i=1:words(modes)] csv skip 1 using ($2/1000):(only(word(modes, i), 3)) \
  with lines lw 2 lc rgb colour(word(modes, i), i) dt dash(word(modes, i)) title label(word(modes, i))
set title 'Prequential accuracy over the last 1,000 records'
plot for [i=1:words(modes)] csv skip 1 using ($2/1000):(only(word(modes, i), 4)) \
  with lines lw 1.5 lc rgb colour(word(modes, i), i) dt dash(word(modes, i)) title label(word(modes, i))
unset multiplot
