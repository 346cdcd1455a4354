# The plots of streamtrain_bench_deploy (bench/README.md; deploy_thesis.png too): the served model's prequential
# accuracy over the last 1,000 records per configuration (left), and the bytes each
# configuration published per iteration against the accuracy it served (right). The
# benchmark runs it; to redraw from the committed CSVs:
#   gnuplot -e "csv='bench/results/deploy.csv'; curves='bench/results/deploy_curves.csv'; \
#     png='bench/results/deploy.png'" bench/plot_deploy.gp
if (!exists("csv")) csv = 'bench/results/deploy.csv'
if (!exists("curves")) curves = 'bench/results/deploy_curves.csv'
if (!exists("png")) png = 'bench/results/deploy.png'
# The curves drawn on the left (all rows appear on the right).
if (!exists("configs")) configs = 'initial dense none topk-1%-train topk-1%-shadow topk-0.1%-train topk-0.1%-shadow topk-0.01%-train topk-0.01%-shadow randomk-1%-train randomk-1%-shadow'

set terminal pngcairo size 1400,640 font ',10'
set output png
set datafile separator ','
set grid

label(c) = c eq 'initial' ? 'initial model, never updated' : c eq 'dense' ? 'dense snapshots' : \
  c eq 'none' ? 'no sparsity' : c
# Shadow feedback dashed; colour by sparsifier and ratio.
dash(c) = strstrt(c, 'shadow') > 0 ? 2 : (c eq 'initial' ? 3 : 1)
colour(c) = c eq 'initial' ? '#000000' : c eq 'dense' ? '#666666' : c eq 'none' ? '#1b9e77' : \
  strstrt(c, 'topk-1%') ? '#d95f02' : strstrt(c, 'topk-0.1%') ? '#7570b3' : \
  strstrt(c, 'topk-0.01%') ? '#e7298a' : strstrt(c, 'randomk') ? '#66a61e' : \
  strstrt(c, 'dpu-1%') ? '#a6761d' : strstrt(c, 'dpu-0.1%') ? '#1f78b4' : \
  strstrt(c, 'dpu-0.01%') ? '#b2182b' : '#e6ab02'
only(c, col) = strcol(1) eq c ? column(col) : NaN

set multiplot layout 1,2
# Random-k 1% with train feedback falls far below the others early on; the axis keeps the
# other curves readable and the title says where it went.
set title "Served model: prequential accuracy over the last 1,000 records\n(the axis starts at 0.78: randomk-1%-train falls below it early on)"
set yrange [0.78:0.94]
set key outside below center horizontal maxrows 4
set xlabel 'records streamed (thousands)'
set ylabel 'accuracy'
set xrange [0:*]
plot for [i=1:words(configs)] curves skip 1 \
  using ($2/1000):(only(word(configs, i), 4)) with lines lw 1.5 \
  lc rgb colour(word(configs, i)) dt dash(word(configs, i)) title label(word(configs, i))

set title 'Bytes published per iteration against served accuracy'
set logscale x 10
set xrange [50:2e6]
set yrange [*:*]
set format x '10^{%L}'
set xlabel 'bytes per iteration (log scale)'
set ylabel 'accuracy'
set key outside below center horizontal
# One point per row of deploy.csv; rows without bytes (the initial model, no deployment)
# have no place on a log axis, and threshold repeats top-k exactly.
bytes(fb) = column(13) > 0 && strstrt(strcol(1), 'threshold') == 0 && strcol(6) eq fb ? \
  column(13) : NaN
# Labels: random-k below its point (it shares its x with top-k 1%), the rest beside it.
labelled(fb, random) = (strstrt(strcol(1), 'randomk') > 0) == random ? bytes(fb) : NaN
# "topk-0.1%-train" -> "topk-0.1%"; none and dense stay.
short(s) = strstrt(s, '%') > 0 ? s[1:strstrt(s, '%')] : (s eq 'none' ? 'no sparsity' : s)
plot csv skip 1 using (bytes('')):22 with points pt 7 ps 1.4 lc rgb '#666666' \
       title 'dense snapshots', \
     csv skip 1 using (bytes('train')):22 with points pt 7 ps 1.4 lc rgb '#d95f02' \
       title 'served prequential, train feedback', \
     csv skip 1 using (bytes('shadow')):22 with points pt 9 ps 1.6 lc rgb '#7570b3' \
       title 'served prequential, shadow feedback', \
     csv skip 1 using (bytes('train')):25 with points pt 6 ps 1.2 lc rgb '#d95f02' \
       title 'served test, train', \
     csv skip 1 using (bytes('shadow')):25 with points pt 8 ps 1.2 lc rgb '#7570b3' \
       title 'served test, shadow', \
     csv skip 1 using (labelled('train', 0)):22:(short(strcol(1))) with labels right \
       offset -1.2,0 font ',8' notitle, \
     csv skip 1 using (labelled('shadow', 0)):22:(short(strcol(1))) with labels left \
       offset 1.2,0 font ',8' notitle, \
     csv skip 1 using (labelled('', 0)):22:(short(strcol(1))) with labels left \
       offset 1.2,0 font ',8' notitle, \
     csv skip 1 using (labelled('train', 1)):22:(short(strcol(1))) with labels center \
       offset 0,-1.2 font ',8' notitle, \
     csv skip 1 using (labelled('shadow', 1)):22:(short(strcol(1))) with labels center \
       offset 0,-1.2 font ',8' notitle
unset multiplot
